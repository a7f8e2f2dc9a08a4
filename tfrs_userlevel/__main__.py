"""python -m tfrs_userlevel: the `tfrs-userlevel` command."""

from tfrs_userlevel.cli import entry_point

entry_point()
