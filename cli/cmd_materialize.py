"""adapters materialize."""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.context import AppState, pass_state
from registry.cli.render import echo_json
from registry.errors import ArgumentError


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="[FOLDER=]REF...")
@click.option(
    "--into",
    type=click.Path(path_type=Path),
    help="Directory of adapters to lay out: one folder per adapter (default: print the "
    "cache directories only).",
)
@click.option("--copy", is_flag=True, help="Copy the files into each folder instead of a symlink.")
@click.option("--rehash", is_flag=True, help="Re-hash cached files instead of checking sizes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def materialize(
    state: AppState, refs: tuple[str, ...], into: Path | None, copy: bool, rehash: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Verified, read-only PEFT directories for servers that read adapters from disk.

    Each version is copied once into the registry's cache (cache/materialized/DIGEST,
    every file hashed on the way) and reused after that. With --into, DIR gets one
    folder per adapter, named after it (team/bot -> team--bot) or FOLDER=REF: a
    symlink into the cache, or a copy with --copy; re-running swaps folders by rename.

    \b
    Example:
      adapters materialize support-bot@prod sql-bot@prod --into /srv/loras
      adapters materialize bot=support-bot@prod --into /srv/loras --copy
    """
    registry = state.registry()
    if into is None:
        if any("=" in ref for ref in refs):
            raise ArgumentError("FOLDER=REF names a folder in --into DIR; pass --into")
        paths = [(ref, registry.materialize(ref, rehash=rehash)) for ref in refs]
        if as_json:
            echo_json([{"ref": ref, "cached": str(path)} for ref, path in paths])
        else:
            for _ref, path in paths:
                click.echo(str(path))
        return
    named: dict[str, str] = {}
    plain: list[str] = []
    for ref in refs:
        folder, sep, rest = ref.partition("=")
        if sep:
            named[folder] = rest
        else:
            plain.append(ref)
    if named and plain:
        raise ArgumentError("name every folder (FOLDER=REF) or none")
    laid = registry.materialize_into(named or plain, into, copy=copy, rehash=rehash)
    if as_json:
        echo_json([entry.to_dict() for entry in laid])
        return
    for entry in laid:
        kind = "copy of" if copy else "->"
        click.echo(f"{entry.path}  {kind} {entry.cached}  ({entry.ref})")


COMMANDS = [materialize]
