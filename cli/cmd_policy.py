"""adapters policy show|check|set."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from registry.cli.context import AppState, pass_state
from registry.cli.render import echo_json

_MAX_POLICY = 1 << 20


@click.group()
def policy() -> None:
    """Show, check or replace the promotion policy (policy.json): the gates alias moves meet.

    Works on a local registry and on a registry server (--registry http://..., an
    admin token); a replacement is validated before anything is written, written
    atomically and recorded in the audit log (policy-set) with who did it. The next
    gated alias move applies it. The format is schemas/policy.schema.json
    (docs/lifecycle.md).

    \b
    Example:
      adapters policy show --json > policy.json
      adapters policy check policy.json
      adapters policy set policy.json
    """


def _read(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_POLICY + 1)
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_POLICY:
        raise click.UsageError(f"{path} is larger than 1 MiB; a policy is a small JSON file")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"{path} is not valid JSON: {exc}; fix it and try again") from None


@policy.command()
@click.option("--json", "as_json", is_flag=True, help="Print only the policy document.")
@pass_state
def show(state: AppState, as_json: bool) -> None:
    """Print the stored policy (nothing is gated when there is none).

    \b
    Example:
      adapters policy show
      adapters policy show --json > policy.json
    """
    stored = state.registry().policy()
    if as_json:
        echo_json(stored.document)
        return
    if stored.document is None:
        click.echo("no policy: alias moves are gated only by --require", err=True)
        return
    click.echo(f"# policy.json sha256:{stored.sha256}")
    click.echo(json.dumps(stored.document, indent=2, sort_keys=True))


@policy.command()
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def check(state: AppState, file: Path | None, as_json: bool) -> None:
    """Check FILE (or the stored policy) and report every problem; exit 1 if any.

    \b
    Example:
      adapters policy check policy.json
    """
    result = state.registry().check_policy(None if file is None else _read(file))
    if as_json:
        echo_json({"valid": result.valid, "problems": list(result.problems),
                   "rules": result.rules})  # fmt: skip
    elif result.valid:
        click.echo(f"valid: {result.rules} rule(s)")
    else:
        for problem in result.problems:
            click.echo(f"problem: {problem}", err=True)
    if not result.valid:
        sys.exit(1)


@policy.command(name="set")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the change as JSON.")
@pass_state
def set_(state: AppState, file: Path, as_json: bool) -> None:
    """Replace the policy with FILE, once it is valid (nothing is written otherwise).

    \b
    Example:
      adapters policy set policy.json
      adapters --registry http://registry:8321 policy set policy.json
    """
    change = state.registry().set_policy(_read(file))
    if as_json:
        echo_json({"sha256": change.sha256, "previous_sha256": change.previous_sha256,
                   "rules": change.rules, "actor": change.actor,
                   "at": change.at.isoformat()})  # fmt: skip
        return
    click.echo(f"policy set: {change.rules} rule(s), sha256:{change.sha256[:16]}... by "
               f"{change.actor}")  # fmt: skip


COMMANDS = [policy]
