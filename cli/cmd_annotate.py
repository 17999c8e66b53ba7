"""adapters tag, adapters describe: annotations changed after the push."""

from __future__ import annotations

import click

from registry.cli.context import AppState, pass_state
from registry.cli.options import parse_pairs
from registry.cli.render import echo_json


@click.command()
@click.argument("ref")
@click.argument("pairs", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--rm", "remove", multiple=True, metavar="KEY", help="Remove this tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the tags before and after as JSON.")
@pass_state
def tag(
    state: AppState, ref: str, pairs: tuple[str, ...], remove: tuple[str, ...], as_json: bool
) -> None:
    """Set or remove tags on the version REF resolves to; recorded in the audit log.

    \b
    Example:
      adapters tag my-lora@3 team=nlp stage=prod
      adapters tag my-lora@prod --rm stage
    """
    change = state.registry().set_tags(ref, parse_pairs(pairs, "KEY=VALUE"), remove=remove)
    if as_json:
        echo_json(change.to_dict())
        return
    if not change.changed:
        click.echo(f"note: {change.ref} already has these tags; nothing changed", err=True)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(change.tags.items())) or "(no tags)"
    click.echo(f"{change.ref} {shown}")


@click.command()
@click.argument("ref")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print the change as JSON.")
@pass_state
def describe(state: AppState, ref: str, text: str, as_json: bool) -> None:
    """Set the description of the version REF resolves to ("" clears it); audited.

    \b
    Example:
      adapters describe my-lora@3 "SQL generation, trained on spider train + 2k in-house"
      adapters describe my-lora@3 ""      # clear it
    """
    change = state.registry().describe(ref, text)
    if as_json:
        echo_json(change.to_dict())
        return
    if not change.changed:
        click.echo(f"note: {change.ref} already has this description; nothing changed", err=True)
    click.echo(f"{change.ref}: {change.description or '(no description)'}")


COMMANDS = [tag, describe]
