"""adapters combine, merge, resize, extract."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import click

from registry.cli.context import AppState, pass_state
from registry.cli.options import parse_pairs
from registry.cli.progress import progress_for_terminal
from registry.cli.render import echo_json, human_size, plural
from registry.ops.methods import (
    COMBINE_METHODS,
    DEFAULT_MAJORITY_SIGN,
    DEFAULT_SEED,
    MAJORITY_SIGNS,
    CombineSpec,
)

_UNITS = {
    "": 1,
    "B": 1,
    **{
        prefix + unit: 10 ** (3 * power)
        for power, prefix in enumerate("KMG", 1)
        for unit in ("", "B")
    },
    **{prefix + "IB": 2 ** (10 * power) for power, prefix in enumerate("KMG", 1)},
}


def _weights(values: tuple[str, ...]) -> list[float] | None:
    if not values:
        return None
    found: list[float] = []
    for value in values:
        for part in value.split(","):
            try:
                found.append(float(part))
            except ValueError:
                raise click.BadParameter(
                    f"{part!r} is not a number", param_hint="--weights"
                ) from None
    return found


def _size(text: str | None) -> int | None:
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?I?B?)\s*", text.upper())
    if not match or match.group(2) not in _UNITS:
        raise click.BadParameter(
            f"{text!r}: expected a size such as 5GB, 500MB or 2GiB", param_hint="--max-shard-size"
        )
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size < 1:
        raise click.BadParameter("must be positive", param_hint="--max-shard-size")
    return size


def _lineage_line(result: Any) -> str:
    lineage = result.lineage
    parents = ", ".join(
        f"{p.name}@{p.version}" + (f" (weight {p.weight:g})" if p.weight is not None else "")
        for p in lineage.parents
    )
    params = lineage.parameters
    shown = [f"{k}={params[k]}" for k in ("method", "rank", "density", "seed") if k in params]
    if "retained_energy" in params:
        shown.append(
            f"retained energy {params['retained_energy']:.4f} "
            f"(min {params['retained_energy_min']:.4f} in {params['retained_energy_min_module']})"
        )
    source = f" of {parents}" if parents else ""
    return f"{lineage.operation}{source}: " + ", ".join(shown)


def _report(result: Any, as_json: bool) -> None:
    if as_json:
        echo_json(result.to_dict())
        return
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if not result.created:
        click.echo("note: identical content is already stored; nothing was written", err=True)
    click.echo(_lineage_line(result), err=True)
    click.echo(f"{result.version.ref} {result.version.digest}")


_TAGS = click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag (repeatable).")
_ALIAS = click.option("--alias", help="Point this alias at the new version.")
_VERSION = click.option("--version", "version", help="PEP 440 version (default: next integer).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
_OUTSIDE = click.option(
    "--allow-lineage-outside-namespace",
    "outside",
    is_flag=True,
    help="On a server, store NS/NAME from versions outside NS/ anyway (its lineage shows "
    "their names and digests to NS/'s tokens).",
)


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF REF...")
@click.option("--method", type=click.Choice(COMBINE_METHODS), required=True, help="How to combine.")
@click.option(
    "--weights",
    "weight_values",
    multiple=True,
    metavar="W,W,...",
    help="One weight per REF, comma-separated or repeated (default: 1 each).",
)
@click.option(
    "--rank", type=int, help="Rank of the result (svd and dense methods; default: max r)."
)
@click.option(
    "--density", type=float, help="Share of entries kept (ties, dare_*, magnitude_prune)."
)
@click.option(
    "--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed for DARE's drops."
)
@click.option(
    "--majority-sign",
    type=click.Choice(MAJORITY_SIGNS),
    default=DEFAULT_MAJORITY_SIGN,
    show_default=True,
    help="How ties and dare_ties elect each entry's sign.",
)
@click.option("--name", required=True, help="Name of the new adapter.")
@click.option(
    "--allow-different-bases",
    is_flag=True,
    help="Combine adapters recorded for different base models anyway.",
)
@_VERSION
@_ALIAS
@_TAGS
@_OUTSIDE
@_JSON
@pass_state
def combine(
    state: AppState,
    refs: tuple[str, ...],
    method: str,
    weight_values: tuple[str, ...],
    rank: int | None,
    density: float | None,
    seed: int,
    majority_sign: str,
    name: str,
    allow_different_bases: bool,
    version: str | None,
    alias: str | None,
    tags: tuple[str, ...],
    outside: bool,
    as_json: bool,
) -> None:
    """Combine adapter versions into a new version, recorded with its lineage.

    cat is exact (ranks add up); svd is the exact weighted sum truncated to --rank without
    forming dense deltas; linear, ties, dare_linear, dare_ties and magnitude_prune work on
    each module's dense delta, then go back to --rank. IA3 adapters combine with linear.

    \b
    Example:
      adapters combine sql-lora@2 chat-lora@prod --method svd --weights 0.7,0.3 \\
          --rank 16 --name sql-chat
      adapters combine a b c --method ties --density 0.5 --name abc
    """
    spec = CombineSpec.build(
        method,
        len(refs),
        weights=_weights(weight_values),
        rank=rank,
        density=density,
        seed=seed,
        majority_sign=majority_sign,
    )
    # Options that do not fit together are usage errors (exit 2), found before the registry
    # opens; values out of range are the library's ArgumentError (exit 1).
    mismatches = spec.mismatches(len(refs))
    if mismatches:
        raise click.UsageError("; ".join(mismatches))
    result = state.registry().combine(
        list(refs),
        spec,
        name=name,
        allow_different_bases=allow_different_bases,
        version=version,
        alias=alias,
        tags=parse_pairs(tags, "--tag"),
        progress=progress_for_terminal(),
        allow_lineage_outside_namespace=outside,
    )
    _report(result, as_json)


@click.command()
@click.argument("ref")
@click.option(
    "--base",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Base model directory (safetensors, one file or shards with an index).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output directory.")
@click.option("--force", is_flag=True, help="Merge even if the compatibility check fails.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out directory.")
@click.option(
    "--max-shard-size",
    metavar="SIZE",
    help="Re-shard the output (e.g. 5GB); default: the base's own shard layout.",
)
@_JSON
@pass_state
def merge(
    state: AppState,
    ref: str,
    base: Path,
    out: Path,
    force: bool,
    overwrite: bool,
    max_shard_size: str | None,
    as_json: bool,
) -> None:
    """Fold an adapter into base weights and write a full model directory.

    Streams tensor by tensor (memory stays at about the largest tensor), checks the adapter
    against the base first, and copies config, generation config and tokenizer files. The
    output loads with transformers' from_pretrained.

    \b
    Example:
      adapters merge sql-lora@prod --base ./Llama-3.1-8B --out ./Llama-3.1-8B-sql
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = state.registry().merge_into_base(
            ref,
            base,
            out,
            force=force,
            max_shard_bytes=_size(max_shard_size),
            overwrite=overwrite,
            progress=progress_for_terminal(),
        )
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    if as_json:
        echo_json(result.to_dict())
        return
    for check in result.compat.warnings:
        click.echo(f"warning: {check.name}: {check.detail}", err=True)
    merged = result.merged
    click.echo(
        f"merged {result.ref} into {base} -> {merged.directory}: {merged.tensors_changed} of "
        f"{merged.tensors} tensors changed, {plural(merged.shards, 'shard')}, "
        f"{human_size(merged.bytes_written)} in {merged.seconds:.1f}s"
    )


@click.command()
@click.argument("ref")
@click.option("--rank", type=int, required=True, help="The new rank.")
@click.option("--name", required=True, help="Name of the new adapter.")
@_VERSION
@_ALIAS
@_TAGS
@_OUTSIDE
@_JSON
@pass_state
def resize(
    state: AppState,
    ref: str,
    rank: int,
    name: str,
    version: str | None,
    alias: str | None,
    tags: tuple[str, ...],
    outside: bool,
    as_json: bool,
) -> None:
    """Store the best rank-RANK approximation of an adapter as a new version.

    Exact SVD truncation from the factors; the retained spectral energy is recorded in the
    lineage. LoHa and LoKr adapters become LoRA; DoRA keeps its magnitudes.

    \b
    Example:
      adapters resize sql-lora@3 --rank 8 --name sql-lora-r8
    """
    result = state.registry().resize(
        ref,
        rank,
        name=name,
        version=version,
        alias=alias,
        tags=parse_pairs(tags, "--tag"),
        progress=progress_for_terminal(),
        allow_lineage_outside_namespace=outside,
    )
    _report(result, as_json)


@click.command()
@click.option(
    "--base",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The base model directory.",
)
@click.option(
    "--tuned",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The fully fine-tuned model directory (same architecture).",
)
@click.option("--rank", type=int, required=True, help="Rank of the extracted LoRA.")
@click.option("--name", required=True, help="Name of the new adapter.")
@click.option(
    "--target",
    "targets",
    multiple=True,
    help="Module name or suffix to extract, e.g. q_proj (repeatable; default: all linear).",
)
@click.option(
    "--include-embeddings", is_flag=True, help="Also extract embeddings and the output head."
)
@click.option("--base-name", help="Record the base as NAME[@REVISION] (default: from config).")
@click.option(
    "--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Randomized SVD seed."
)
@_VERSION
@_ALIAS
@_TAGS
@_JSON
@pass_state
def extract(
    state: AppState,
    base: Path,
    tuned: Path,
    rank: int,
    name: str,
    targets: tuple[str, ...],
    include_embeddings: bool,
    base_name: str | None,
    seed: int,
    version: str | None,
    alias: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Extract a LoRA from a fully fine-tuned model (randomized SVD of tuned - base).

    The base is fingerprinted and recorded with the new version, so loading it onto other
    weights is refused later.

    \b
    Example:
      adapters extract --base ./Llama-3.1-8B --tuned ./Llama-3.1-8B-sft --rank 32 --name sft-r32
    """
    result = state.registry().extract(
        base,
        tuned,
        rank,
        name=name,
        targets=targets,
        include_embeddings=include_embeddings,
        base_name=base_name,
        seed=seed,
        version=version,
        alias=alias,
        tags=parse_pairs(tags, "--tag"),
        progress=progress_for_terminal(),
    )
    _report(result, as_json)


COMMANDS = [combine, merge, resize, extract]
