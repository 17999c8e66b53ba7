"""adapters server, adapters token create|list|revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from registry.cli.context import AppState, pass_state
from registry.cli.render import echo_json, table
from registry.errors import ArgumentError
from registry.store.results import iso_utc

if TYPE_CHECKING:
    from registry.security.tokens import TokenInfo


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8321, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--anonymous-read",
    is_flag=True,
    help="Let callers without a token read and download (never write).",
)
@click.option(
    "--max-upload-bytes",
    type=click.IntRange(1),
    default=8 << 30,
    show_default=True,
    help="Largest file a push may upload.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds a request's headers may take, or its body may stall, before the request "
    "is refused (408).",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(0.1),
    default=60.0,
    show_default=True,
    help="Seconds a JSON request body may take to arrive in whole (408 after).",
)
@click.option(
    "--ui-secret-file",
    type=click.Path(exists=True, dir_okay=False),
    envvar="ADAPTERS_UI_SECRET_FILE",
    help="File whose bytes sign web UI sessions, so they outlive a restart and agree across "
    "servers [env ADAPTERS_UI_SECRET_FILE; default: a key made per start].",
)
@pass_state
def server(
    state: AppState,
    host: str,
    port: int,
    anonymous_read: bool,
    max_upload_bytes: int,
    body_timeout: float,
    request_timeout: float,
    ui_secret_file: str | None,
) -> None:
    """Serve this registry over HTTP: the JSON API /api/v1 with access tokens.

    The web UI is at /ui: sign in there with a token (docs/ui.md).

    Every request needs a token (`adapters token create`) unless --anonymous-read.
    Stop it with Ctrl-C or SIGTERM: pushes in flight are finished first (up to 120 s),
    then it exits 0; a second signal stops at once. Its log on stderr is JSON, a line
    each: the start (where it listens, the catalog and blob store kinds), every request.
    For TLS, put it behind a reverse proxy (docs/server.md).

    \b
    Example:
      adapters token create ci --role writer
      adapters server --host 0.0.0.0 --port 8321
    """
    from registry.server.run import serve
    from registry.server.settings import ServerSettings

    registry = state.registry()
    if state.is_remote():
        raise ArgumentError("serve a local registry: --registry must be a path here, not a URL")
    ui_secret = None
    if ui_secret_file is not None:
        from pathlib import Path

        ui_secret = Path(ui_secret_file).read_bytes().strip()
        if len(ui_secret) < 32:
            raise ArgumentError("--ui-secret-file must hold at least 32 bytes of random data")
    settings = ServerSettings(
        host, port, anonymous_read, max_upload_bytes=max_upload_bytes, ui_secret=ui_secret,
        idle_seconds=body_timeout,
        request_seconds=request_timeout,
    )
    status = serve(registry, settings)
    if status:
        raise SystemExit(status)


@click.group()
def token() -> None:
    """Access tokens for `adapters server` (run locally, or remotely with an admin token).

    \b
    Example:
      adapters token create ci --role writer --namespace team-a --expires 90d
      adapters token list
      adapters token revoke ci
    """


@token.command("create")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["reader", "writer", "maintainer", "admin"]),
    help="reader: read, download; writer: + push, eval; maintainer: + alias, yank, rm; "
    "admin: + tokens, trusted keys, policy, gc, sign.",
)
@click.option("--namespace", metavar="NS", help="Limit the token to names NS/*.")
@click.option("--expires", metavar="WHEN", help="30d, 12h, 2w, or an ISO date (default never).")
@click.option("--json", "as_json", is_flag=True, help="Print the token and its record as JSON.")
@pass_state
def token_create(
    state: AppState,
    name: str,
    role: str,
    namespace: str | None,
    expires: str | None,
    as_json: bool,
) -> None:
    """Create a token and print its secret, this once (only its hash is stored).

    \b
    Example:
      adapters token create deploy --role reader --expires 30d
    """
    created = state.registry().create_token(name, role, namespace=namespace, expires=expires)
    if as_json:
        echo_json(created.to_dict())
        return
    click.echo(created.secret)
    click.echo(f"token {name!r} ({role}); shown once: store it now", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def token_list(state: AppState, as_json: bool) -> None:
    """List tokens (never their secrets), with times in UTC to the second.

    \b
    Example:
      adapters token list --json
    """
    found = state.registry().tokens()
    if as_json:
        echo_json([t.to_dict() for t in found])
        return
    rows = [
        (t.name, t.role, t.namespace, iso_utc(t.created_at),
         None if t.expires_at is None else iso_utc(t.expires_at), _state(t))
        for t in found
    ]  # fmt: skip
    click.echo(table(["NAME", "ROLE", "NAMESPACE", "CREATED", "EXPIRES", "STATE"], rows))


def _state(token: TokenInfo) -> str:
    if token.revoked_at is not None:
        return "revoked"
    return "active" if token.active() else "expired"


@token.command("revoke")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the revoked token as JSON.")
@pass_state
def token_revoke(state: AppState, name: str, as_json: bool) -> None:
    """Revoke a token at once. A token already revoked stays so: a note says when, and
    nothing changes (exit 0).

    \b
    Example:
      adapters token revoke ci
    """
    revocation = state.registry().revoke_token(name)
    if as_json:
        echo_json(revocation.to_dict())
        return
    revoked_at = revocation.token.revoked_at
    if revocation.changed or revoked_at is None:
        click.echo(f"revoked token {name!r}")
        return
    click.echo(
        f"note: token {name!r} was already revoked at {iso_utc(revoked_at)}; nothing changed",
        err=True,
    )


COMMANDS = [server, token]
