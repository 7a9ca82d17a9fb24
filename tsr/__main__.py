"""`python -m tsr` runs the `tsr` command."""

from tsr.cli import entry

entry()
