"""``python -m wsprobe``: the command line."""

from .cli import main_entry

main_entry()
