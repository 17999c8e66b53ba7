"""adapters init, adapters push."""

from __future__ import annotations

from pathlib import Path

import click

from registry import Registry
from registry.bases.target import QUANTIZATIONS
from registry.cli.context import AppState, pass_state
from registry.cli.options import parse_pairs, parse_requirements, parse_scores
from registry.cli.progress import progress_for_terminal
from registry.cli.render import echo_json, human_size, plural
from registry.errors import ArgumentError
from registry.store.home import LOCAL_DIRNAME, refuse_url


@click.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option(
    "--new-catalog",
    is_flag=True,
    help="Start an empty catalog in a home that holds blobs but lost its catalog "
    "(restoring the catalog from a backup keeps the versions; this does not).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the registry's path as JSON.")
@pass_state
def init(state: AppState, path: str | None, new_catalog: bool, as_json: bool) -> None:
    """Create a registry at PATH (default: --registry, else ./.adapters, found from
    subdirectories).

    Creates the catalog too. A home whose catalog went missing is refused unless
    --new-catalog says to start an empty one.

    \b
    Example:
      adapters init            # ./.adapters, used from here and below
      adapters init /srv/adapter-registry --json
    """
    if path is None and state.is_remote() and state.explicit_registry:
        raise ArgumentError("init creates a local registry: give a path, not a server URL")
    if path is None and state.explicit_registry:
        path = str(state.registry_path)
    if path is not None:
        refuse_url(path, servers=False)  # read as given: Path() would fold ftp://x into ftp:/x
    target = Path(path) if path is not None else Path.cwd() / LOCAL_DIRNAME
    with Registry.open(target, create=True, new_catalog=new_catalog) as registry:
        root = registry.home.root
    if as_json:
        echo_json({"path": str(root)})
        return
    click.echo(f"Initialized registry at {root}")


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--name", help="Adapter name (default: the directory name).")
@click.option("--version", "version", help="PEP 440 version (default: next integer).")
@click.option("--base", help="Base model NAME[@REVISION] (default: from adapter_config.json).")
@click.option(
    "--base-path",
    type=click.Path(path_type=Path, file_okay=False),
    help="Base model weights (safetensors dir) to fingerprint and record with the adapter "
    "(default: the directory or Hub id in the local HF cache that adapter_config.json names).",
)
@click.option(
    "--exhaustive-base",
    is_flag=True,
    help="Also record the full-content digest of every base tensor (reads the whole base once).",
)
@click.option(
    "--base-quantization",
    type=click.Choice(QUANTIZATIONS),
    help="Quantization the adapter was trained on (e.g. nf4 for QLoRA).",
)
@click.option(
    "--requires",
    "requires",
    multiple=True,
    metavar="PKG<SPEC>",
    help="Package requirement checked at load, e.g. 'peft>=0.14' (repeatable).",
)
@click.option(
    "--data",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Training data file or directory to hash (repeatable).",
)
@click.option(
    "--data-hash", "data_hashes", multiple=True, help="Known data digest sha256:HEX (repeatable)."
)
@click.option(
    "--eval", "evals", multiple=True, metavar="METRIC=VALUE", help="Eval score (repeatable)."
)
@click.option("--eval-dataset", default="", help="Dataset the --eval scores were measured on.")
@click.option("--eval-split", default="", help="Split the --eval scores were measured on.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag (repeatable).")
@click.option("--alias", help="Point this alias at the pushed version.")
@click.option(
    "--convert-pickle",
    is_flag=True,
    help="Convert adapter_model.bin with torch.load(weights_only=True) instead of refusing it.",
)
@click.option(
    "--all-adapters",
    is_flag=True,
    help="Store every adapter of a multi-adapter directory (PEFT saves named ones in subfolders).",
)
@click.option(
    "--name-template",
    metavar="TEMPLATE",
    help="With --all-adapters: a subfolder's name from {name} and {adapter} "
    "(default '{name}/{adapter}').",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def push(
    state: AppState,
    directory: Path,
    name: str | None,
    version: str | None,
    base: str | None,
    base_path: Path | None,
    exhaustive_base: bool,
    base_quantization: str | None,
    requires: tuple[str, ...],
    data: tuple[Path, ...],
    data_hashes: tuple[str, ...],
    evals: tuple[str, ...],
    eval_dataset: str,
    eval_split: str,
    tags: tuple[str, ...],
    alias: str | None,
    convert_pickle: bool,
    all_adapters: bool,
    name_template: str | None,
    as_json: bool,
) -> None:
    """Store the adapter in DIRECTORY as a new version.

    Prints NAME@VERSION sha256:DIGEST. The base weights are fingerprinted so
    that loading onto other weights is refused: --base-path, else the directory or
    Hub id (in the local HF cache) the adapter names; if none is found the version's
    base is unverified and a warning says how to record it. Pushing identical content
    again stores nothing and prints the existing version; its --alias, --eval and --tag
    are applied to that version (the alias through the same gates as `adapters alias`:
    an unmet gate applies nothing and exits 1).

    DIRECTORY may also be a diffusers or kohya single-file LoRA (.safetensors).
    With --all-adapters every adapter of a multi-adapter directory is stored, each
    as its own push: the top one as NAME, a subfolder's as NAME/SUBFOLDER (or
    --name-template); exits 1 if any was refused.

    \b
    Example:
      adapters push out/sql-lora --base-path ./Llama-3.1-8B \\
          --data data/train.jsonl --eval accuracy=0.91 --eval-dataset spider --alias staging
      adapters push out/multi --all-adapters --name-template '{name}-{adapter}'
    """
    if all_adapters:
        _push_all(state, directory, name, name_template, as_json, version=version, base=base,
                  data=data, data_hashes=data_hashes, evals=parse_scores(evals),
                  eval_dataset=eval_dataset, eval_split=eval_split,
                  tags=parse_pairs(tags, "--tag"), alias=alias, convert_pickle=convert_pickle,
                  base_path=base_path, exhaustive_base=exhaustive_base,
                  base_quantization=base_quantization,
                  requires=parse_requirements(requires))  # fmt: skip
        return
    if name_template is not None:
        raise click.UsageError("--name-template applies only with --all-adapters")
    result = state.registry().push(
        directory,
        name=name,
        version=version,
        base=base,
        data=data,
        data_hashes=data_hashes,
        evals=parse_scores(evals),
        eval_dataset=eval_dataset,
        eval_split=eval_split,
        tags=parse_pairs(tags, "--tag"),
        alias=alias,
        convert_pickle=convert_pickle,
        base_path=base_path,
        exhaustive_base=exhaustive_base,
        base_quantization=base_quantization,
        requires=parse_requirements(requires),
        progress=progress_for_terminal(),
    )
    if result.base_unverified:
        click.echo(f"warning: {result.base_unverified}", err=True)
    if as_json:
        echo_json(result.to_dict())
        return
    for note in result.skipped:
        click.echo(f"note: not stored: {note}", err=True)
    if result.blobs_repaired:
        click.echo(
            f"repaired {result.blobs_repaired} stored blob(s) that no longer matched their "
            "hash, from this directory's files",
            err=True,
        )
    if not result.created and result.applied:
        click.echo(f"already stored as {result.version.ref}; applied {result.applied}", err=True)
    elif not result.created:
        click.echo("note: identical content is already stored; nothing was written", err=True)
    else:
        click.echo(
            f"stored {plural(result.blobs_written, 'new blob')}, "
            f"{human_size(result.bytes_written)}",
            err=True,
        )
    click.echo(f"{result.version.ref} {result.version.digest}")


def _push_all(
    state: AppState,
    directory: Path,
    name: str | None,
    name_template: str | None,
    as_json: bool,
    **options: object,
) -> None:
    result = state.registry().push_all(
        directory, name=name, name_template=name_template, progress=progress_for_terminal(),
        **options,
    )  # fmt: skip
    if as_json:
        echo_json(result.to_dict())
    else:
        for item in result.adapters:
            where = f"{item.subfolder}/" if item.subfolder else "(top)"
            if item.result is None:
                click.echo(f"refused {where} as {item.name}: {item.error}", err=True)
                continue
            if item.result.base_unverified:
                click.echo(f"warning: {item.name}: {item.result.base_unverified}", err=True)
            state_word = "stored" if item.result.created else "already stored"
            version = item.result.version
            click.echo(f"{where} {state_word} {version.ref} {version.digest}")
        click.echo(result.summary, err=True)
    if not result.ok:
        raise SystemExit(1)


COMMANDS = [init, push]
