"""adapters demo."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from registry.cli.context import AppState, pass_state


@click.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the generated models and exports here (default: a temp dir, removed after).",
)
@pass_state
def demo(state: AppState, workdir: Path | None) -> None:
    """Run the main job end to end on tiny generated models, narrating each step.

    It writes a base model and three adapters, pushes them with data hashes and
    eval scores, lists, verifies and exports them. Without --registry it all
    happens in a temporary registry that is removed at the end; with --registry
    the demo versions (names demo/...) stay there.

    \b
    Example:
      adapters demo
      adapters demo --registry ./try-it --workdir ./demo-files
    """
    from registry.admin.demo import run_demo

    if state.explicit_registry:
        outcome = run_demo(state.registry(), click.echo, workdir)
    else:
        from registry.api import Registry

        # Never the user's own registry: the demo's versions would stay in it.
        with tempfile.TemporaryDirectory(prefix="adapters-demo-") as scratch:
            root = Path(scratch)
            with Registry.open(
                root / "registry", create=True, database_url=f"sqlite:///{root}/registry/catalog.db"
            ) as registry:
                outcome = run_demo(registry, click.echo, workdir or root / "work")
        click.echo(
            "\nThe temporary registry and files were removed; run with --registry to keep them."
        )
    if outcome.verified != len(outcome.refs):
        raise SystemExit(1)


COMMANDS = [demo]
