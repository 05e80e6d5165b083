"""The application shell: the `office` command, the web app, `office serve`, the demo.

It may import every other layer; nothing imports it.
"""
