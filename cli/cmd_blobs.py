"""adapters blobs copy: move a registry's blobs between a local directory and object storage."""

from __future__ import annotations

from dataclasses import asdict

import click

from registry.cli.context import AppState, pass_state
from registry.cli.render import echo_json


@click.group()
def blobs() -> None:
    """Blob store maintenance.

    \b
    Example:
      adapters blobs copy ~/.adapters/objects s3://team-bucket/adapters
    """


@blobs.command(name="copy")
@click.argument("source")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def copy(state: AppState, source: str, target: str, as_json: bool) -> None:
    """Copy every blob from SOURCE to TARGET, each one hash-checked; resumable.

    SOURCE and TARGET are directories (relative ones from the current directory) or
    s3://BUCKET/PREFIX, gs://..., az://... URLs; `-` means this registry's blob store.
    A SOURCE without blobs is refused. Blobs TARGET already has are skipped, so run it
    again after an interruption. Then point the registry at TARGET with
    ADAPTERS_BLOB_URL or blob_url in registry.json.

    \b
    Example:
      adapters blobs copy - s3://team-bucket/adapters
      adapters blobs copy s3://team-bucket/adapters ./objects-backup
    """
    from registry.cli.progress import progress_for_terminal

    result = state.registry().copy_blobs(
        None if source == "-" else source,
        None if target == "-" else target,
        progress=progress_for_terminal(),
    )
    if as_json:
        echo_json(asdict(result))
        return
    click.echo(
        f"copied {result.copied} blob(s) ({result.copied_bytes} bytes) from {result.source} "
        f"to {result.target}; {result.skipped} already there"
    )


COMMANDS = [blobs]
