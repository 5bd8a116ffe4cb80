"""`python -m schedctl`."""

from schedctl.cli import main

main()
