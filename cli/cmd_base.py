"""adapters base add|list|link."""

from __future__ import annotations

import click

from registry.bases.target import QUANTIZATIONS
from registry.cli.context import AppState, pass_state
from registry.cli.render import echo_json, table
from registry.store.catalog.base_rows import RELATIONS


@click.group()
def base() -> None:
    """Record base models (with weight fingerprints) and relations between them.

    \b
    Example:
      adapters base add ./Llama-3.1-8B --name meta-llama/Llama-3.1-8B@main
      adapters base add meta-llama/Llama-3.1-8B@main      # from the local HF cache
      adapters base link my-llama-nf4 meta-llama/Llama-3.1-8B --relation quantized-from
    """


@base.command(name="add")
@click.argument("source")
@click.option(
    "--name", help="Record under NAME[@REVISION] (default: from the model or the Hub id)."
)
@click.option("--version", help="A PEP 440 version for this base model.")
@click.option(
    "--quantization", type=click.Choice(QUANTIZATIONS), help="Override what config.json says."
)
@click.option(
    "--exhaustive",
    is_flag=True,
    help="Also record each tensor's full-content digest (reads every byte once; cached).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@pass_state
def add(
    state: AppState,
    source: str,
    name: str | None,
    version: str | None,
    quantization: str | None,
    exhaustive: bool,
    as_json: bool,
) -> None:
    """Fingerprint SOURCE (a directory or HUB_ID[@REV] in the local cache) and record it.

    Versions pushed before, naming the base as --name gives it, are then checked
    against these weights. --exhaustive adds digests that catch a single changed value.

    \b
    Example:
      adapters base add ./Llama-3.1-8B --name meta-llama/Llama-3.1-8B@main
      adapters base add meta-llama/Llama-3.1-8B@main      # from the local HF cache
    """
    record = state.registry().add_base(
        source, name=name, version=version, quantization=quantization, exhaustive=exhaustive
    )
    if as_json:
        echo_json(record.to_dict())
        return
    fp = record.fingerprint
    assert fp is not None
    click.echo(
        f"{record.ref} {fp.content} ({fp.tensor_count} tensors, {fp.total_params:,} parameters, "
        f"quantization {record.quantization})"
    )


@base.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def list_(state: AppState, as_json: bool) -> None:
    """List recorded base models and their relations.

    \b
    Example:
      adapters base list
      adapters base list --json
    """
    reg = state.registry()
    records = reg.bases()
    links = reg.base_relations()
    if as_json:
        echo_json({"bases": [r.to_dict() for r in records], "relations": [vars(x) for x in links]})
        return
    rows = [
        (
            r.ref,
            r.version,
            r.quantization,
            r.fingerprint.tensor_count if r.fingerprint else None,
            (r.content_digest or "-")[:19],
        )
        for r in records
    ]
    click.echo(table(("BASE", "VERSION", "QUANT", "TENSORS", "CONTENT"), rows))
    for link in links:
        click.echo(f"{link.source} {link.relation} {link.target}")


@base.command(name="link")
@click.argument("source")
@click.argument("target")
@click.option("--relation", type=click.Choice(RELATIONS), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the relation as JSON.")
@pass_state
def link(state: AppState, source: str, target: str, relation: str, as_json: bool) -> None:
    """Record that base SOURCE is RELATION to base TARGET (e.g. a 4-bit copy of it).

    \b
    Example:
      adapters base link my-llama-nf4 meta-llama/Llama-3.1-8B --relation quantized-from
    """
    found = state.registry().link_bases(source, target, relation)
    if as_json:
        echo_json(vars(found))
        return
    click.echo(f"{found.source} {found.relation} {found.target}")


COMMANDS = [base]
