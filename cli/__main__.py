"""``python -m registry.cli`` runs the ``adapters`` command."""

from registry.cli.main import main

main(prog_name="adapters")
