"""adapters verify, adapters export."""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.context import AppState, pass_state
from registry.cli.progress import progress_for_terminal
from registry.cli.render import echo_json, plural, table


@click.command()
@click.argument("ref")
@click.option(
    "--base",
    help="Also check compatibility with this base: a directory, a recorded base, or a Hub id.",
)
@click.option(
    "--allow-unverified-base",
    is_flag=True,
    help="With --base: only warn when the base trained on was never fingerprinted.",
)
@click.option(
    "--exhaustive",
    is_flag=True,
    help="With --base: compare every tensor in full where the recorded base has digests.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@pass_state
def verify(
    state: AppState,
    ref: str,
    base: str | None,
    allow_unverified_base: bool,
    exhaustive: bool,
    as_json: bool,
) -> None:
    """Re-hash every blob, recompute the digest, re-validate config and tensors.

    With --base, add the compatibility checks against that base model; they fail
    when the base trained on was never fingerprinted (see `adapters base add`).
    Exits 0 when every check passes, 1 otherwise.

    \b
    Example:
      adapters verify my-lora@prod
      adapters verify my-lora@prod --base ./Llama-3.1-8B-Instruct
    """
    report = state.registry().verify(
        ref, base=base, allow_unverified_base=allow_unverified_base, exhaustive=exhaustive
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(f"{report.ref}  {report.digest}")
        click.echo(
            table(
                ("CHECK", "STATUS", "DETAIL"),
                [(c.name, c.status.upper(), c.detail) for c in report.checks],
            )
        )
        failed = len(report.failures)
        summary = "all checks passed" if report.ok else f"{plural(failed, 'check')} failed"
        click.echo(summary, err=True)
    if not report.ok:
        raise SystemExit(1)


@click.command()
@click.argument("ref")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace the contents of a non-empty DIRECTORY.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def export(state: AppState, ref: str, directory: Path, overwrite: bool, as_json: bool) -> None:
    """Write a version back out as a directory (PEFT format for PEFT adapters).

    Every file is checked against its recorded hash while it is written.

    \b
    Example:
      adapters export my-lora@prod serve/my-lora
    """
    result = state.registry().export(
        ref, directory, overwrite=overwrite, progress=progress_for_terminal()
    )
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"exported {result.ref} ({len(result.files)} files) to {result.directory}")


COMMANDS = [verify, export]
