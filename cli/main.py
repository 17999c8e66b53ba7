"""Entry point of the ``adapters`` command.

Exit codes: 0 ok; 1 a check failed, something was refused, or an error; 2 usage.
Errors are one line; ``ADAPTERS_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from registry.cli.context import AppState
from registry.errors import RegistryError, YankedVersionWarning
from registry.release import __version__

DEBUG_ENV = "ADAPTERS_DEBUG"
ShowWarning = Callable[..., None]


def _yanked_as_one_line(previous: ShowWarning) -> ShowWarning:
    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, YankedVersionWarning):
            click.echo(f"warning: {message}", err=True)
        else:
            previous(message, category, *args, **kwargs)

    return show


class RegistryGroup(click.Group):
    """Turns library errors into one line on stderr and exit code 1, and a yanked
    version's warning into one line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", YankedVersionWarning)
                warnings.showwarning = _yanked_as_one_line(warnings.showwarning)
                return super().invoke(ctx)
        except RegistryError as exc:
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            click.echo(f"error: {exc}", err=True)
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

    \b
    Example:
      adapters push out/my-lora --base-path ./Llama-3.1-8B --eval accuracy=0.93
      adapters list
      adapters verify my-lora@1 --base ./Llama-3.1-8B
    """
    remote = registry_path is not None and "://" in registry_path
    ctx.obj = AppState(registry_path if remote or registry_path is None else Path(registry_path))


def _register() -> None:
    from registry.cli import (
        cmd_admin,
        cmd_base,
        cmd_blobs,
        cmd_check,
        cmd_demo,
        cmd_find,
        cmd_hub,
        cmd_lifecycle,
        cmd_materialize,
        cmd_ops,
        cmd_server,
        cmd_sign,
        cmd_store,
    )

    modules = (cmd_store, cmd_find, cmd_check, cmd_lifecycle, cmd_ops, cmd_base, cmd_demo)
    for module in (*modules, cmd_hub, cmd_sign, cmd_admin, cmd_materialize, cmd_blobs, cmd_server):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
