"""Entry point of the ``adapters`` command.

Exit codes: 0 ok; 1 a check failed, something was refused, or an error; 2 usage.
Errors are one line; ``ADAPTERS_DEBUG=1`` shows the traceback.

Start-up is kept cheap: each command's module is imported only when that command
runs (``LazyGroup``), so ``adapters --help`` imports neither SQLAlchemy nor torch.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from registry.cli.context import AppState
from registry.errors import RegistryError, YankedVersionWarning
from registry.release import __version__

DEBUG_ENV = "ADAPTERS_DEBUG"
ShowWarning = Callable[..., None]

# name -> (module in registry.cli, attribute, the first sentence of its help). The help
# is repeated here so that listing the commands imports none of them; a test keeps the
# two in step.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "alias": (
        "cmd_lifecycle",
        "alias",
        "Point ALIAS of an adapter at REF, once every promotion gate is met.",
    ),
    "base": (
        "cmd_base",
        "base",
        "Record base models (with weight fingerprints) and relations between them.",
    ),
    "blobs": (
        "cmd_blobs",
        "blobs",
        "Blob store maintenance.",
    ),
    "combine": (
        "cmd_ops",
        "combine",
        "Combine adapter versions into a new version, recorded with its lineage.",
    ),
    "compare": (
        "cmd_lifecycle",
        "compare",
        "Compare two versions: evals, config differences and, for two LoRA "
        "adapters, the cosine similarity of their weight updates per module.",
    ),
    "demo": (
        "cmd_demo",
        "demo",
        "Run the main job end to end on tiny generated models, narrating each step.",
    ),
    "describe": (
        "cmd_annotate",
        "describe",
        'Set the description of the version REF resolves to ("" clears it); audited.',
    ),
    "doctor": (
        "cmd_admin",
        "doctor",
        "Check the home, the catalog database and schema, the rows and the blobs.",
    ),
    "eval": (
        "cmd_lifecycle",
        "eval_",
        "Append eval scores to a version; earlier records are kept, the latest is shown.",
    ),
    "export": (
        "cmd_check",
        "export",
        "Write a version back out as a directory (PEFT format for PEFT adapters).",
    ),
    "extract": (
        "cmd_ops",
        "extract",
        "Extract a LoRA from a fully fine-tuned model (randomized SVD of tuned - base).",
    ),
    "gc": (
        "cmd_lifecycle",
        "gc",
        "Delete blobs no version references (never one a push in progress holds).",
    ),
    "hub": (
        "cmd_hub",
        "hub",
        "Share adapters through the Hugging Face Hub.",
    ),
    "init": (
        "cmd_store",
        "init",
        "Create a registry at PATH (default: --registry, else ./.adapters, found from "
        "subdirectories).",
    ),
    "key": (
        "cmd_sign",
        "key",
        "Manage signing keys: make one, trust someone else's, list them.",
    ),
    "lineage": (
        "cmd_lifecycle",
        "lineage",
        "Show what a version was derived from and what was derived from it.",
    ),
    "list": (
        "cmd_find",
        "list_",
        "List adapter versions; every filter given must hold.",
    ),
    "log": (
        "cmd_lifecycle",
        "log",
        "Show the audit log: every change with its time, actor and details, oldest first.",
    ),
    "materialize": (
        "cmd_materialize",
        "materialize",
        "Verified, read-only PEFT directories for servers that read adapters from disk.",
    ),
    "merge": (
        "cmd_ops",
        "merge",
        "Fold an adapter into base weights and write a full model directory.",
    ),
    "migrate": (
        "cmd_admin",
        "migrate",
        "Upgrade the catalog (SQLite file or PostgreSQL) to this release's schema, in place.",
    ),
    "policy": (
        "cmd_policy",
        "policy",
        "Show, check or replace the promotion policy (policy.json): the gates alias moves meet.",
    ),
    "push": (
        "cmd_store",
        "push",
        "Store the adapter in DIRECTORY as a new version.",
    ),
    "resize": (
        "cmd_ops",
        "resize",
        "Store the best rank-RANK approximation of an adapter as a new version.",
    ),
    "rm": (
        "cmd_lifecycle",
        "rm",
        "Remove an exact version from the catalog (its blobs go at the next gc).",
    ),
    "server": (
        "cmd_server",
        "server",
        "Serve this registry over HTTP: the JSON API /api/v1 with access tokens.",
    ),
    "show": (
        "cmd_find",
        "show",
        "Show one adapter version: manifest, files, data, evals, aliases.",
    ),
    "sign": (
        "cmd_sign",
        "sign",
        "Sign a version's digest with an ed25519 key, after verifying it.",
    ),
    "tag": (
        "cmd_annotate",
        "tag",
        "Set or remove tags on the version REF resolves to; recorded in the audit log.",
    ),
    "token": (
        "cmd_server",
        "token",
        "Access tokens for `adapters server` (run locally, or remotely with an admin token).",
    ),
    "unyank": (
        "cmd_lifecycle",
        "unyank",
        "Make a yanked version resolvable again.",
    ),
    "verify": (
        "cmd_check",
        "verify",
        "Re-hash every blob, recompute the digest, re-validate config and tensors.",
    ),
    "yank": (
        "cmd_lifecycle",
        "yank",
        "Yank an exact version (PEP 592): bare names and specifiers skip it; "
        "pinning it exactly still works, with a warning.",
    ),
}


def _yanked_as_one_line(previous: ShowWarning) -> ShowWarning:
    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, YankedVersionWarning):
            from registry.cli.render import style

            click.echo(f"{style('warning:', err=True, fg='yellow')} {message}", err=True)
        else:
            previous(message, category, *args, **kwargs)

    return show


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """Let ``--registry PATH`` and ``--json`` stand anywhere before ``--``: ``--registry``
    moves in front of the command (it belongs to the group), ``--json`` to the end (it
    belongs to the command that prints)."""
    front: list[str] = []
    rest: list[str] = []
    as_json = False
    items = list(args)
    index = 0
    while index < len(items):
        item = items[index]
        if item == "--":
            rest.extend(items[index:])
            break
        if item == "--registry" and index + 1 < len(items):
            front.extend(items[index : index + 2])
            index += 2
            continue
        if item.startswith("--registry="):
            front.append(item)
        elif item == "--json":
            as_json = True
        else:
            rest.append(item)
        index += 1
    if as_json:
        cut = rest.index("--") if "--" in rest else len(rest)
        rest.insert(cut, "--json")
    return front + rest


class RegistryGroup(click.Group):
    """Imports a command's module only when it runs; turns library errors into one line
    on stderr and exit code 1, and a yanked version's warning into one line on stderr."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module_name, attribute, _ = COMMANDS[cmd_name]
            module = importlib.import_module(f"registry.cli.{module_name}")
            self.add_command(getattr(module, attribute), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            # An unloaded command is shown through a stand-in with the same first sentence.
            shown = self.commands.get(name) or click.Command(name, help=COMMANDS[name][2])
            rows.append((name, shown.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = hoist_global_options(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", YankedVersionWarning)
                warnings.showwarning = _yanked_as_one_line(warnings.showwarning)
                return super().invoke(ctx)
        except RegistryError as exc:
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            from registry.cli.render import style

            click.echo(f"{style('error:', err=True, fg='red', bold=True)} {exc}", err=True)
            ctx.exit(1)


@click.group(cls=RegistryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--registry",
    "registry_path",
    metavar="PATH|URL",
    help="Registry home to use (default: $ADAPTERS_HOME, nearest .adapters/, user data dir), "
    "or a server URL http://HOST:PORT (token in $ADAPTERS_TOKEN; default $ADAPTERS_URL).",
)
@click.version_option(__version__, prog_name="adapters")
@click.pass_context
def main(ctx: click.Context, registry_path: str | None) -> None:
    """Registry and lifecycle tool for PEFT adapters.

    --registry and --json may also follow the command (adapters list --registry X).

    \b
    Example:
      adapters push out/my-lora --base-path ./Llama-3.1-8B --eval accuracy=0.93
      adapters list
      adapters verify my-lora@1 --base ./Llama-3.1-8B
    """
    remote = registry_path is not None and "://" in registry_path
    ctx.obj = AppState(registry_path if remote or registry_path is None else Path(registry_path))
