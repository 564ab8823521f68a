"""``python -m mitosis`` is the original mitosis's command, as ``mitosis`` is."""

from mitosis.original_cli import command

command()
