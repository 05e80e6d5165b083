"""`python -m app` is the `office` command."""

from app.cli import main

main()
