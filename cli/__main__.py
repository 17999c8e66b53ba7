"""``python -m cli`` runs the ``adapters`` command."""

from cli.main import main

main(prog_name="adapters")
