"""`python -m office` is the `office` command."""

from office.cli import main

main()
