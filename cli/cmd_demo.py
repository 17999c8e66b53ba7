"""adapters demo."""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.context import AppState, pass_state


@click.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the generated models and exports (default: a new temp dir).",
)
@pass_state
def demo(state: AppState, workdir: Path | None) -> None:
    """Run the main job end to end on tiny generated models, narrating each step.

    It writes a base model and three adapters, pushes them with data hashes and
    eval scores, lists, verifies and exports them, in the current registry.

    \b
    Example:
      adapters demo
    """
    from registry.admin.demo import run_demo

    outcome = run_demo(state.registry(), click.echo, workdir)
    if outcome.verified != len(outcome.refs):
        raise SystemExit(1)


COMMANDS = [demo]
