"""adapters list, adapters show."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import click

from registry.cli.context import AppState, pass_state
from registry.cli.render import (
    column_widths,
    echo_json,
    echo_json_array,
    human_size,
    output_width,
    table,
)
from registry.store.catalog.listing import STATUSES
from registry.store.list_query import ListQuery
from registry.store.manifest import Lineage
from registry.store.results import AdapterVersion, EvalScore, iso_utc

DEFAULT_LIMIT = 50


def _base_text(version: AdapterVersion) -> str:
    base = version.base_model
    if base.name is None:
        return "-"
    text = f"{base.name}@{base.revision}" if base.revision else base.name
    # No fingerprint recorded at push: checks against a base cannot confirm the weights.
    return text if version.base_verified else f"{text} (unverified)"


def _eval_label(score: EvalScore) -> str:
    where = "/".join(part for part in (score.dataset, score.split) if part)
    return f"{score.metric}@{where}" if where else score.metric


def _eval_columns(versions: Sequence[AdapterVersion]) -> tuple[list[str], list[dict[str, float]]]:
    """One column per metric (with its dataset/split), holding each version's latest."""
    labels: dict[str, None] = {}
    values: list[dict[str, float]] = []
    for version in versions:
        row = {_eval_label(s): s.value for s in version.latest_evals()}
        labels.update(dict.fromkeys(row))
        values.append(row)
    return sorted(labels), values


@click.command(name="list")
@click.option("--name", help="Only names matching this glob, e.g. 'team/*'.")
@click.option(
    "--base", help="Only adapters for this base: NAME[@REVISION] or fingerprint sha256:HEX."
)
@click.option("--method", help="Only this method, e.g. lora, ia3, prefix_tuning.")
@click.option("--alias", help="Only versions this alias points at, e.g. prod.")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY[=VALUE]", help="Only with this tag (repeatable)."
)
@click.option(
    "--data",
    metavar="sha256:HEX|PATH",
    help="Only adapters trained on this data (a digest, or a file/directory to digest).",
)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="EXPR",
    help="Latest eval condition, e.g. 'accuracy>=0.9' or 'f1@squad>0.8' (repeatable, ANDed).",
)
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option(
    "--sort",
    default="name",
    show_default=True,
    metavar="KEY",
    help="name, version, created (newest first) or METRIC[@DATASET] (best first).",
)
@click.option("--reverse", is_flag=True, help="Reverse the sort order.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="At most N versions.",
)
@click.option("--all", "show_all", is_flag=True, help="Every matching version, no limit.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (all columns).")
@pass_state
def list_(
    state: AppState,
    /,
    tags: tuple[str, ...],
    limit: int,
    show_all: bool,
    as_json: bool,
    **filters: Any,
) -> None:
    """List adapter versions; every filter given must hold.

    Shows the first --limit versions (a note on stderr says how many more match);
    --all streams them all, a page at a time, its columns sized by the first page.
    Tables are cut to the terminal width; --json has it all.

    \b
    Example:
      adapters list --base meta-llama/Llama-3.1-8B --method lora
      adapters list --where 'accuracy@gsm8k>=0.9' --sort accuracy@gsm8k --limit 5
      adapters list --data sha256:9f2c...   # which adapters saw this data?
    """
    tag_filter = {
        key.strip(): (value.strip() if sep else None)
        for key, sep, value in (t.partition("=") for t in tags)
    }
    # The other options are named after the query's fields, so they pass through as is.
    query = ListQuery(tags=tag_filter, **filters)
    registry = state.reader()
    if show_all:
        _stream_versions(registry.list_pages(replace(query, limit=None)), as_json)
        return
    # One row more than shown tells whether to count the rest; only a page is read.
    page = registry.list(replace(query, limit=None if show_all else limit + 1))
    more = 0
    if not show_all and len(page) > limit:
        page = page[:limit]
        more = registry.count(query) - limit
    if as_json:
        echo_json([v.to_dict() for v in page])
    elif not page:
        click.echo("no adapters match", err=True)
    else:
        _print_versions(page)
    if more > 0:
        click.echo(
            f"{more:,} more {'version matches' if more == 1 else 'versions match'}; "
            f"show them with --limit {limit + more} or --all",
            err=True,
        )


def _stream_versions(pages: Iterator[list[AdapterVersion]], as_json: bool) -> None:
    """Print each page as it is read: memory stays that of one page at any size."""
    if as_json:
        echo_json_array(v.to_dict() for page in pages for v in page)
        return
    first = next(pages, None)
    if first is None:
        click.echo("no adapters match", err=True)
        return
    layout = _print_versions(first)
    for page in pages:
        _print_versions(page, layout)


@dataclass(frozen=True)
class _Layout:
    """A streamed table's metric columns and widths, fixed by its first page."""

    metrics: list[str]
    widths: list[int]


def _print_versions(versions: Sequence[AdapterVersion], layout: _Layout | None = None) -> _Layout:
    metrics, scores = _eval_columns(versions)
    if layout is not None:
        metrics = layout.metrics
    rows = [
        (
            v.name,
            v.version + (" (yanked)" if v.yanked else ""),
            v.method,
            _base_text(v),
            ",".join(v.aliases) or None,
            *(row.get(metric) for metric in metrics),
            human_size(v.size_bytes),
            v.digest[7:19],
        )
        for v, row in zip(versions, scores, strict=True)
    ]
    headers = ("NAME", "VERSION", "METHOD", "BASE", "ALIASES", *metrics, "SIZE", "DIGEST")
    if layout is None:
        layout = _Layout(metrics, column_widths(headers, rows, output_width()))
        widths = None  # the first part prints the header over these same widths
    else:
        widths = layout.widths
    click.echo(
        table(
            headers,
            rows,
            width=output_width(),
            row_style=lambda i: {"dim": True} if versions[i].yanked else {},
            widths=widths,
        )
    )
    return layout


@click.command()
@click.argument("ref")
@click.option("--config", "show_config", is_flag=True, help="Print the adapter's whole config.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest and annotations.")
@pass_state
def show(state: AppState, ref: str, show_config: bool, as_json: bool) -> None:
    """Show one adapter version: manifest, files, data, evals, aliases.

    \b
    Example:
      adapters show my-lora@prod
      adapters show my-lora@prod --config
      adapters show 'my-lora>=1,<2' --json
    """
    registry = state.reader()
    version = registry.get(ref)
    links = state.hub_links(registry, version)
    if as_json:
        echo_json({**version.to_dict(), "hub": [link.to_dict() for link in links]})
        return
    m = version.manifest
    lines = [
        f"{version.ref}  {version.digest}",
        f"  method       {m.method} ({m.source_format})",
        f"  analysis     {_analysis_text(m.analysis)}",
        f"  base model   {_base_text(version)}",
        f"  base weights {m.base_model.fingerprint or 'never fingerprinted: adapters base add'}",
        f"  status       {version.status}"
        + (f": {version.status_reason}" if version.status_reason else ""),
        f"  created      {iso_utc(version.created_at)} by {version.created_by}",
        f"  size         {human_size(version.size_bytes)}",
    ]
    if version.aliases:
        lines.append(f"  aliases      {', '.join(version.aliases)}")
    if version.tags:
        lines.append("  tags         " + ", ".join(f"{k}={v}" for k, v in version.tags.items()))
    if version.description:
        lines.append("  description  " + version.description.replace("\n", "\n               "))
    click.echo("\n".join(lines))
    click.echo("\nfiles")
    click.echo(
        table(
            ("PATH", "ROLE", "SIZE", "SHA256"),
            [(f.path, f.role, human_size(f.size), f.sha256) for f in m.files],
        )
    )
    if version.training_data:
        click.echo("\ntraining data")
        click.echo(
            table(
                ("DIGEST", "KIND", "SOURCE"),
                [(f"sha256:{d.sha256}", d.kind, d.source) for d in version.training_data],
            )
        )
    if version.evals:
        click.echo("\nevals (latest per metric and dataset)")
        click.echo(
            table(
                ("METRIC", "VALUE", "DATASET", "SPLIT", "RECORDED"),
                [
                    (
                        s.metric,
                        s.value,
                        s.dataset or None,
                        s.split or None,
                        iso_utc(s.recorded_at),
                    )
                    for s in version.latest_evals()
                ],
            )
        )
    if m.lineage is not None:
        click.echo("\n" + _lineage_text(m.lineage))
    if links:
        click.echo("\nhub")
        click.echo(
            table(
                ("SYNC", "REPO", "REVISION", "COMMIT", "TAG", "AT"),
                [
                    (s.direction, s.repo_id, s.revision, s.commit[:12], s.tag, iso_utc(s.at))
                    for s in links
                ],
            )
        )
    if show_config:
        click.echo("\nconfig")
        click.echo(json.dumps(m.config, indent=2, sort_keys=True))
    else:
        keys = len(m.config)
        click.echo(f"\nconfig: {keys} key{'' if keys == 1 else 's'} (shown with --config)")


def _analysis_text(analysis: str) -> str:
    if analysis == "full":
        return "full (tensors checked against the config)"
    if analysis == "structural":
        return "structural (config and headers checked; loads through peft)"
    return "opaque (a PEFT type this registry does not know; stored and exported exactly)"


def _lineage_text(lineage: Lineage) -> str:
    """The recipe a derived version was made by: operation, parents, parameters."""
    made_by = f" ({lineage.tool_version})" if lineage.tool_version else ""
    lines = [f"lineage: {lineage.operation}{made_by}"]
    if lineage.parents:
        parents = table(
            ("PARENT", "WEIGHT", "DIGEST"),
            [(f"{p.name}@{p.version}", p.weight, p.digest) for p in lineage.parents],
        )
        lines.extend("  " + line for line in parents.splitlines())
    for key, value in sorted(lineage.parameters.items()):
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"  {key:<26} {shown}")
    return "\n".join(lines)


COMMANDS = [list_, show]
