"""adapters eval, compare, alias, yank, unyank, rm, gc, log, lineage."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from registry.check import Check
from registry.cli.context import AppState, pass_state
from registry.cli.options import parse_scores
from registry.cli.render import echo_json, human_size, plural, table
from registry.lifecycle.results import AliasChange, LineageNode
from registry.store.results import iso_utc


def _checks_table(checks: Sequence[Check]) -> str:
    return table(
        ("REQUIREMENT", "STATUS", "DETAIL"), [(c.name, c.status.upper(), c.detail) for c in checks]
    )


@click.command(name="eval")
@click.argument("ref")
@click.argument("scores", nargs=-1, required=True, metavar="METRIC=VALUE...")
@click.option("--dataset", default="", help="Dataset the scores were measured on.")
@click.option("--split", default="", help="Split of the dataset, e.g. test.")
@click.option("--notes", default="", help="Free text kept with the records.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@pass_state
def eval_(
    state: AppState,
    ref: str,
    scores: tuple[str, ...],
    dataset: str,
    split: str,
    notes: str,
    as_json: bool,
) -> None:
    """Append eval scores to a version; earlier records are kept, the latest is shown.

    \b
    Example:
      adapters eval my-lora@3 accuracy=0.941 f1=0.88 --dataset gsm8k --split test
    """
    record = state.registry().record_eval(
        ref, parse_scores(scores, "METRIC=VALUE"), dataset=dataset, split=split, notes=notes
    )
    if as_json:
        echo_json(record.to_dict())
        return
    on = f" on {dataset}" + (f" ({split})" if split else "") if dataset else ""
    shown = ", ".join(f"{s.metric}={s.value:g}" for s in record.scores)
    click.echo(f"{record.ref}: recorded {shown}{on}")


@click.command()
@click.argument("first")
@click.argument("second")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@pass_state
def compare(state: AppState, first: str, second: str, as_json: bool) -> None:
    """Compare two versions: evals, config differences and, for two LoRA adapters,
    the cosine similarity of their weight updates per module.

    \b
    Example:
      adapters compare my-lora@prod my-lora@4
    """
    result = state.registry().compare(first, second)
    if as_json:
        echo_json(result.to_dict())
        return
    a, b = result.a, result.b
    click.echo(f"{a} {result.digest_a[:19]}...  vs  {b} {result.digest_b[:19]}...")
    click.echo("\nevals (latest)")
    if result.evals:
        rows = [
            (e.metric, e.dataset or None, e.split or None, e.a, e.b, _signed(e.delta))
            for e in result.evals
        ]
        click.echo(table(("METRIC", "DATASET", "SPLIT", a, b, "DELTA"), rows))
    else:
        click.echo("  none recorded")
    click.echo("\ndifferences")
    if result.fields:
        click.echo(
            table(("FIELD", a, b), [(f.field, _value(f.a), _value(f.b)) for f in result.fields])
        )
    else:
        click.echo("  none: same method, base, data and config")
    click.echo("\nsimilarity of weight updates (cosine per module)")
    if result.similarity:
        click.echo(
            table(
                ("MODULE", "SHAPE", "COSINE", f"NORM {a}", f"NORM {b}"),
                [
                    (s.module, f"{s.shape[0]}x{s.shape[1]}", s.cosine, s.norm_a, s.norm_b)
                    for s in result.similarity
                ],
            )
        )
        known = [s.cosine for s in result.similarity if s.cosine is not None]
        if known:
            click.echo(
                f"mean cosine {sum(known) / len(known):.4g} over {plural(len(known), 'module')}, "
                f"min {min(known):.4g}"
            )
    if result.unmatched_modules:
        click.echo(
            f"{plural(len(result.unmatched_modules), 'module')} not compared (in one adapter only, "
            "or of different shapes)"
        )
    if result.similarity_note:
        click.echo(f"note: {result.similarity_note}")


def _signed(value: float | None) -> str | None:
    return None if value is None else f"{value:+.4g}"


def _value(value: object) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _name_and_alias(args: Sequence[str], what: str) -> tuple[str, str | None]:
    if len(args) == 1 and "@" in args[0]:
        name, _, alias = args[0].partition("@")
        return name, alias
    if len(args) == 1:
        return args[0], None
    if len(args) == 2:
        return args[0], args[1]
    raise click.UsageError(f"{what} takes NAME ALIAS (or NAME@ALIAS)")


def _history_rows(changes: Sequence[AliasChange]) -> list[tuple[object, ...]]:
    return [
        (
            iso_utc(c.at),
            c.alias,
            c.action,
            c.previous,
            c.version,
            c.actor,
            c.note or None,
        )
        for c in changes
    ]


@click.command()
@click.argument("args", nargs=-1, metavar="REF ALIAS")
@click.option(
    "--require",
    "requires",
    multiple=True,
    metavar="EXPR",
    help="Extra gate: 'METRIC[@DATASET]>=VALUE', 'verify' or 'base-fingerprint' (repeatable).",
)
@click.option("--note", default="", help="Why the alias moves (kept in its history).")
@click.option("--check", "check_only", is_flag=True, help="Evaluate the gates; move nothing.")
@click.option("--rm", "remove", is_flag=True, help="Remove the alias: NAME ALIAS.")
@click.option("--history", is_flag=True, help="Show every move: NAME [ALIAS].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def alias(
    state: AppState,
    args: tuple[str, ...],
    requires: tuple[str, ...],
    note: str,
    check_only: bool,
    remove: bool,
    history: bool,
    as_json: bool,
) -> None:
    """Point ALIAS of an adapter at REF, once every promotion gate is met.

    Gates come from policy.json in the registry home and from --require. An unmet
    gate refuses the move (exit 1) and names each unmet requirement.

    \b
    Example:
      adapters alias my-lora@4 prod --require 'accuracy@gsm8k>=0.93' --note 'beats 3'
      adapters alias my-lora@4 prod --check
      adapters alias --rm my-lora staging
      adapters alias --history my-lora prod
    """
    if remove and history:
        raise click.UsageError("--rm and --history cannot be combined")
    if (remove or history) and (requires or check_only):
        raise click.UsageError("--require and --check only apply when moving an alias")
    registry = state.registry()
    if history:
        name, which = _name_and_alias(args, "--history")
        changes = registry.alias_history(name, which)
        if as_json:
            echo_json([c.to_dict() for c in changes])
        elif not changes:
            click.echo("no alias moves recorded", err=True)
        else:
            headers = ("TIME", "ALIAS", "ACTION", "FROM", "TO", "ACTOR", "NOTE")
            click.echo(table(headers, _history_rows(changes)))
        return
    if remove:
        name, which = _name_and_alias(args, "--rm")
        if which is None:
            raise click.UsageError("--rm takes NAME ALIAS (or NAME@ALIAS)")
        removed = registry.remove_alias(name, which, note=note)
        if as_json:
            echo_json(removed.to_dict())
        else:
            click.echo(f"removed {name}@{which} (pointed at {name}@{removed.previous})")
        return
    if len(args) != 2:
        raise click.UsageError("expected REF ALIAS, e.g. adapters alias my-lora@4 prod")
    ref, name_of_alias = args
    if check_only:
        report = registry.check_alias(ref, name_of_alias, requires=requires)
        if as_json:
            echo_json(report.to_dict())
        elif report.checks:
            click.echo(_checks_table(report.checks))
        else:
            click.echo(f"no gates apply to {name_of_alias}", err=True)
        if not report.ok:
            raise SystemExit(1)
        return
    change = registry.set_alias(ref, name_of_alias, requires=requires, note=note)
    if as_json:
        echo_json(change.to_dict())
        return
    target = f"{change.name}@{change.alias}"
    if not change.changed:
        click.echo(f"{target} already points at {change.name}@{change.version}")
    elif change.previous is None:
        click.echo(f"{target} -> {change.name}@{change.version}")
    else:
        click.echo(f"{target}: {change.name}@{change.previous} -> {change.name}@{change.version}")
    for check in change.gates:
        click.echo(f"  {check.status.upper()} {check.name}: {check.detail}", err=True)


@click.command()
@click.argument("ref")
@click.option("--reason", required=True, help="Why it is yanked (shown to whoever pins it).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def yank(state: AppState, ref: str, reason: str, as_json: bool) -> None:
    """Yank an exact version (PEP 592): bare names and specifiers skip it; pinning it
    exactly still works, with a warning. Yanking again replaces the reason.

    \b
    Example:
      adapters yank my-lora@3 --reason 'trained on the leaked eval set'
    """
    change = state.registry().yank(ref, reason)
    if as_json:
        echo_json(change.to_dict())
        return
    click.echo(
        f"yanked {change.ref}: {change.reason}"
        if change.changed
        else f"{change.ref} was already yanked with that reason"
    )
    for name in change.aliases:
        click.echo(f"note: alias {name} still points at {change.ref}", err=True)


@click.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def unyank(state: AppState, ref: str, as_json: bool) -> None:
    """Make a yanked version resolvable again.

    \b
    Example:
      adapters unyank my-lora@3
    """
    change = state.registry().unyank(ref)
    if as_json:
        echo_json(change.to_dict())
        return
    click.echo(f"unyanked {change.ref}" if change.changed else f"{change.ref} was not yanked")


@click.command()
@click.argument("ref")
@click.option("--force", is_flag=True, help="Also remove aliases that point at the version.")
@click.option("--reason", default="", help="Why it is removed (kept in the audit log).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def rm(state: AppState, ref: str, force: bool, reason: str, as_json: bool) -> None:
    """Remove an exact version from the catalog (its blobs go at the next gc).

    Refused while an alias points at it, unless --force.

    \b
    Example:
      adapters rm my-lora@3 --reason 'deletion request #1234'
    """
    removal = state.registry().remove(ref, force=force, reason=reason)
    if as_json:
        echo_json(removal.to_dict())
        return
    click.echo(f"removed {removal.ref}")
    name = removal.ref.partition("@")[0]
    for alias_name in removal.aliases_removed:
        click.echo(f"note: removed alias {name}@{alias_name}", err=True)
    if removal.unreferenced_bytes:
        click.echo(
            f"note: `adapters gc` will free {human_size(removal.unreferenced_bytes)}", err=True
        )


@click.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted, with sizes.")
@click.option(
    "--trust-catalog",
    is_flag=True,
    help="Delete even when the catalog does not look like the blob store's own.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def gc(state: AppState, dry_run: bool, trust_catalog: bool, as_json: bool) -> None:
    """Delete blobs no version references (never one a push in progress holds).

    Refused when the catalog does not look like the blob store's own (it never
    recorded anything, or none of its blobs is stored): `adapters doctor` explains.

    \b
    Example:
      adapters gc --dry-run
      adapters gc
    """
    result = state.registry().gc(dry_run=dry_run, trust_catalog=trust_catalog)
    if as_json:
        echo_json(result.to_dict())
        return
    rows: list[tuple[object, ...]] = [
        (f"sha256:{b.sha256}", human_size(b.size)) for b in result.blobs
    ]
    rows += [(f.path, human_size(f.size)) for f in result.temp_files]
    if dry_run and rows:
        click.echo(table(("WOULD DELETE", "SIZE"), rows))
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {plural(len(result.blobs), 'blob')} and "
        f"{plural(len(result.temp_files), 'temp file')}, "
        f"{human_size(result.bytes)}; kept {plural(result.kept, 'blob')}"
        + (f", {result.leased} held by pushes in progress" if result.leased else "")
        + (f"; {verb} {plural(result.uploads, 'incomplete upload')}" if result.uploads else "")
    )


def _details_text(details: dict[str, object]) -> str:
    """Details on one line: bulky keys left to --json, digests shortened, empties dropped."""
    parts = []
    for key, value in sorted(details.items()):
        if key in ("manifest", "files", "digests") or value in (None, "", [], {}):
            continue
        text = _value(value)
        if isinstance(value, str) and value.startswith("sha256:") and len(value) == 71:
            text = value[:19] + "..."
        parts.append(f"{key}={text}")
    return " ".join(parts)


@click.command()
@click.argument("ref", required=False)
@click.option("--action", "actions", multiple=True, help="Only these actions (repeatable).")
@click.option("--actor", help="Only changes by this actor.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N events.")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@pass_state
def log(
    state: AppState,
    ref: str | None,
    actions: tuple[str, ...],
    actor: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Show the audit log: every change with its time, actor and details, oldest first.

    REF as a bare NAME shows that adapter's events; NAME@VERSION one version's (also
    after it was removed).

    \b
    Example:
      adapters log my-lora
      adapters log --action yank --action rm --json
    """
    events = state.registry().log(ref, actions=actions, actor=actor, limit=limit)
    if as_json:
        echo_json([e.to_dict() for e in events])
        return
    if not events:
        click.echo("no events", err=True)
        return
    rows = [(iso_utc(e.at), e.actor, e.action, e.ref, _details_text(e.details)) for e in events]
    click.echo(table(("TIME", "ACTOR", "ACTION", "REF", "DETAILS"), rows))


def _tree(nodes: Sequence[LineageNode], prefix: str = "") -> list[str]:
    lines = []
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        how = node.operation + (f", weight {node.weight:g}" if node.weight is not None else "")
        state = "" if node.present else "  (not in the catalog)"
        if node.status == "yanked":
            state = "  (yanked)"
        lines.append(
            f"{prefix}{'└─' if last else '├─'} {node.ref}  {node.digest[:19]}...  [{how}]{state}"
        )
        lines.extend(_tree(node.links, prefix + ("   " if last else "│  ")))
    return lines


@click.command()
@click.argument("ref")
@click.option("--depth", type=click.IntRange(min=1), default=64, help="How many generations.")
@click.option("--json", "as_json", is_flag=True, help="Print both trees as JSON.")
@pass_state
def lineage(state: AppState, ref: str, depth: int, as_json: bool) -> None:
    """Show what a version was derived from and what was derived from it.

    \b
    Example:
      adapters lineage team/merged@2
    """
    report = state.registry().lineage(ref, depth=depth)
    if as_json:
        echo_json(report.to_dict())
        return
    made = f"  ({report.operation})" if report.operation else ""
    click.echo(f"{report.ref}  {report.digest}{made}")
    click.echo("ancestors")
    click.echo("\n".join(_tree(report.ancestors)) if report.ancestors else "  none")
    click.echo("descendants")
    click.echo("\n".join(_tree(report.descendants)) if report.descendants else "  none")


COMMANDS = [eval_, compare, alias, yank, unyank, rm, gc, log, lineage]
