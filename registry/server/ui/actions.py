"""The forms (POST): sign in and out, and the actions on a version (record an eval, move
an alias, yank, unyank, edit tags and description).

Every POST must carry the session's CSRF token, checked before anything else; a missing
or wrong one is a 403 and nothing changes. Actions need a signed-in token whose role
allows them (the API's role table) and call the same ``Registry`` methods as the JSON
endpoints, as that token, so gates, policies and the audit log apply alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from registry.errors import GateError, RegistryError
from registry.security.tokens import authenticate, secret_digest
from registry.server.auth import role_token
from registry.server.ui import flash
from registry.server.ui import session as sessions
from registry.server.ui.flash import Refusal
from registry.server.ui.page import (
    NOT_FOUND,
    Ui,
    UiProblem,
    Visitor,
    read_form,
    redirect,
    render,
)
from registry.server.ui.pages import _ref_in_scope

# action -> (least role, what the form does)
ACTIONS: dict[str, str] = {
    "eval": "writer",
    "tags": "writer",
    "describe": "writer",
    "alias": "maintainer",
    "yank": "maintainer",
    "unyank": "maintainer",
}


async def _checked_form(ui: Ui, request: Request, visitor: Visitor) -> dict[str, str]:
    form = await read_form(request)
    if visitor.fresh or not sessions.csrf_ok(visitor.session, form.get("csrf"), ui.secret):
        raise UiProblem(403, "the form's security token is missing or stale; reload the page")
    return form


async def signin_page(ui: Ui, request: Request, visitor: Visitor) -> Response:
    return render(ui, request, visitor, "signin.html", title="Sign in", error=None)


async def signin(ui: Ui, request: Request, visitor: Visitor) -> Response:
    form = await _checked_form(ui, request, visitor)
    secret = form.get("token", "").strip()
    engine = ui.ctx.registry.catalog.engine
    token = await anyio.to_thread.run_sync(authenticate, engine, secret)
    if token is None:
        return render(
            ui,
            request,
            visitor,
            "signin.html",
            401,
            title="Sign in",
            error="That token is unknown, expired or revoked; ask an admin for one.",
        )
    # A new nonce on sign-in, so a session fixed before it is worth nothing after.
    signed = sessions.new_session(secret_digest(secret))
    response = redirect("/ui/")
    sessions.set_cookie(response, request, signed, ui.secret)
    return response


async def signout(ui: Ui, request: Request, visitor: Visitor) -> Response:
    await _checked_form(ui, request, visitor)
    response = redirect("/ui/signin", {"done": "signed-out"})
    sessions.set_cookie(response, request, sessions.new_session(), ui.secret)
    return response


def _float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UiProblem(400, f"{what} must be a number, not {text[:40]!r}") from None


def _work(ui: Ui, action: str, ref: str, form: dict[str, str]) -> Callable[[], Any]:
    registry = ui.ctx.registry
    if action == "eval":
        metric = form.get("metric", "").strip()
        if not metric:
            raise UiProblem(400, "give the eval's metric name")
        score = _float(form.get("value", "").strip(), "the score")
        return lambda: registry.record_eval(
            ref,
            {metric: score},
            dataset=form.get("dataset", "").strip(),
            split=form.get("split", "").strip(),
            notes=form.get("notes", ""),
        )
    if action == "alias":
        alias = form.get("alias", "").strip()
        return lambda: registry.set_alias(ref, alias, note=form.get("note", ""))
    if action == "yank":
        reason = form.get("reason", "").strip()
        if not reason:
            raise UiProblem(400, "say why the version is yanked")
        return lambda: registry.yank(ref, reason)
    if action == "unyank":
        return lambda: registry.unyank(ref)
    if action == "tags":
        tags: dict[str, str] = {}
        for line in form.get("tags", "").splitlines():
            if line.strip():
                key, sep, value = line.partition("=")
                if not sep:
                    raise UiProblem(400, f"write each tag as KEY=VALUE, not {line[:40]!r}")
                tags[key.strip()] = value.strip()

        def retag() -> Any:
            # The form holds the whole set: keys left out of it are removed.
            old = registry.get(ref).tags
            return registry.set_tags(ref, tags, remove=sorted(set(old) - set(tags)))

        return retag
    if action == "describe":
        return lambda: registry.describe(ref, form.get("description", ""))
    raise UiProblem(404, NOT_FOUND)


def action_handler(action: str) -> Any:
    async def handle(ui: Ui, request: Request, visitor: Visitor) -> Response:
        form = await _checked_form(ui, request, visitor)
        if visitor.caller is None or not visitor.signed_in:
            raise UiProblem(403, "sign in with a token to change anything")
        role = ACTIONS[action]
        if not visitor.may(role):
            raise UiProblem(403, f"this needs {role_token(role)}; ask an admin")
        caller = visitor.caller
        ref = _ref_in_scope(caller, form.get("ref", "").strip())
        try:
            work = _work(ui, action, ref, form)
            await ui.ctx.call(caller, work)
        except UiProblem as exc:
            if exc.status != 400:
                raise
            return _refused(ui, visitor, ref, Refusal(400, error=str(exc)))
        except GateError:
            alias = form.get("alias", "").strip()
            report = await ui.ctx.call(caller, lambda: ui.ctx.registry.check_alias(ref, alias))
            return _refused(ui, visitor, ref, Refusal(409, gate=report))
        except RegistryError as exc:
            if type(exc).__name__ == "NotFoundError":
                raise UiProblem(404, NOT_FOUND) from None
            return _refused(ui, visitor, ref, Refusal(400, error=str(exc)))
        return redirect("/ui/version", {"ref": ref, "done": action})

    return handle


def _refused(ui: Ui, visitor: Visitor, ref: str, refusal: Refusal) -> Response:
    """To the version page, which shows why (nothing was changed): a redirect, so that
    reloading it does not send the form again."""
    signed = flash.encode(refusal, ref, visitor.session, ui.secret)
    return redirect("/ui/version", {"ref": ref, flash.PARAM: signed})
