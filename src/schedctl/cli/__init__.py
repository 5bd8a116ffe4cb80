"""The command line: parse, call the operations, render. No SQL here. One module per command
group registers its commands on the applications of `app`."""

# isort: off
# Imported in the order `schedctl --help` lists their commands.
from schedctl.cli import schedulers, views, files, orgs, admin

# isort: on
from schedctl.cli.app import app
from schedctl.cli.main import main

__all__ = ["admin", "app", "files", "main", "orgs", "schedulers", "views"]
