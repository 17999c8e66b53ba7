"""Rendering a page for a visitor: who is looking (from the session cookie, the token
checked again on every request), the templates (autoescaped, every one), and the error
pages that name nothing stored."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from registry.security.tokens import ROLES, authenticate_digest
from registry.server.auth import ANONYMOUS, Caller
from registry.server.context import Context
from registry.server.ui import session as sessions
from registry.server.ui.session import Session

HERE = Path(__file__).parent
MAX_FORM_BYTES = 64 * 1024


class UiProblem(Exception):
    """A request the UI answers with an error page (status, one line)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


NOT_FOUND = "Not found: there is nothing at this address that you may see."


@dataclass
class Ui:
    ctx: Context
    secret: bytes
    env: Environment

    @classmethod
    def create(cls, ctx: Context) -> Ui:
        secret = ctx.settings.ui_secret
        if secret is None:
            secret = secrets.token_bytes(32)
            # Through the server's log, so that its every line is JSON.
            logging.getLogger("registry.server").warning(
                "web UI sessions are signed with a key made for this run: they end when the "
                "server stops (give --ui-secret-file to keep them)"
            )
        env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            # Everything is escaped, whatever the template's name.
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["qs"] = lambda params: urlencode(
            [(k, v) for k, v in params.items() if v not in (None, "")]
        )
        # JSON as the characters recorded (tojson writes <, >, & and ' as \u escapes,
        # which is for scripts); autoescaping keeps it inert text.
        env.filters["readable"] = lambda value: json.dumps(value, ensure_ascii=False)
        return cls(ctx, secret, env)


@dataclass(frozen=True)
class Visitor:
    caller: Caller | None  # None: not signed in, on a server without --anonymous-read
    session: Session
    fresh: bool  # the session is new and its cookie must be set

    @property
    def signed_in(self) -> bool:
        return self.session.token_sha256 is not None and self.caller is not None

    def may(self, role: str) -> bool:
        """Whether the visitor's role allows ``role``'s actions (anonymous readers act never)."""
        return (
            self.signed_in
            and self.caller is not None
            and (ROLES.index(self.caller.role) >= ROLES.index(role))
        )

    def covers(self, name: str) -> bool:
        return self.caller is not None and self.caller.covers(name)


async def visitor(ui: Ui, request: Request) -> Visitor:
    session = sessions.from_request(request, ui.secret)
    fresh = session is None
    if session is None:
        session = sessions.new_session()
    caller: Caller | None = None
    if session.token_sha256 is not None:
        digest = session.token_sha256
        token = await anyio.to_thread.run_sync(
            authenticate_digest, ui.ctx.registry.catalog.engine, digest
        )
        if token is None:
            # Revoked or expired: the session ends here.
            session, fresh = sessions.new_session(), True
        else:
            caller = Caller(token.name, token.role, token.namespace)
    if caller is None and ui.ctx.settings.anonymous_read:
        caller = ANONYMOUS
    request.scope["adapters.caller"] = None if caller is None else caller.name
    return Visitor(caller, session, fresh)


def reader(visitor: Visitor) -> Caller:
    """The caller allowed to read, or a redirect to the sign-in page."""
    if visitor.caller is None:
        raise SignInNeeded()
    return visitor.caller


class SignInNeeded(Exception):
    """Not signed in on a server that does not let anonymous callers read."""


def render(
    ui: Ui,
    request: Request,
    visitor: Visitor,
    template: str,
    status: int = 200,
    **values: Any,
) -> Response:
    html = ui.env.get_template(template).render(
        visitor=visitor,
        csrf=visitor.session.csrf(ui.secret),
        anonymous_read=ui.ctx.settings.anonymous_read,
        path=request.url.path,
        **values,
    )
    response = HTMLResponse(html, status, headers=SECURITY_HEADERS)
    if visitor.fresh:
        sessions.set_cookie(response, request, visitor.session, ui.secret)
    return response


# No inline script runs and nothing loads from elsewhere; pages are not framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def error_page(ui: Ui, request: Request, visitor: Visitor, status: int, message: str) -> Response:
    return render(ui, request, visitor, "error.html", status, title="Error", message=message)


def redirect(url: str, params: dict[str, Any] | None = None) -> Response:
    query = urlencode([(k, v) for k, v in (params or {}).items() if v not in (None, "")])
    return RedirectResponse(url + ("?" + query if query else ""), status_code=303)


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body (at most 64 KiB), each field's first value."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise UiProblem(415, "send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise UiProblem(413, "the form is too large (at most 64 KiB)")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise UiProblem(400, "the form could not be read; send it again from the page") from None
    return {key: values[0] for key, values in fields.items()}
