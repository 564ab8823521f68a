"""``python -m mitosis.cli``: the ``mitosis-nb`` command."""

from mitosis.cli import command

command()
