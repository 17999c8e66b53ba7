"""The web UI's routes under ``/ui``: each handler gets the visitor (from the session
cookie), and problems become error pages (never JSON, never a traceback)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from registry.errors import RegistryError
from registry.server.context import Context
from registry.server.ui import actions, pages
from registry.server.ui.page import (
    HERE,
    SignInNeeded,
    Ui,
    UiProblem,
    error_page,
    redirect,
    visitor,
)

Handler = Callable[[Ui, Request, Any], Awaitable[Response]]
_log = logging.getLogger("registry.server")


def ui_routes(ctx: Context) -> list[BaseRoute]:
    ui = Ui.create(ctx)

    def page(handler: Handler) -> Any:
        async def handle(request: Request) -> Response:
            who = await visitor(ui, request)
            try:
                return await handler(ui, request, who)
            except SignInNeeded:
                return redirect("/ui/signin", {"next": request.url.path})
            except UiProblem as exc:
                return error_page(ui, request, who, exc.status, str(exc))
            except RegistryError as exc:
                return error_page(ui, request, who, 400, str(exc))

        return handle

    gets: list[tuple[str, Handler]] = [
        ("/ui/", pages.adapters),
        ("/ui/adapter", pages.adapter),
        ("/ui/version", pages.version_page),
        ("/ui/lineage", pages.lineage),
        ("/ui/compare", pages.compare),
        ("/ui/bases", pages.bases),
        ("/ui/base", pages.base),
        ("/ui/audit", pages.audit),
        ("/ui/signin", actions.signin_page),
    ]
    posts: list[tuple[str, Handler]] = [
        ("/ui/signin", actions.signin),
        ("/ui/signout", actions.signout),
        *((f"/ui/actions/{name}", actions.action_handler(name)) for name in actions.ACTIONS),
    ]
    routes: list[BaseRoute] = [
        Route("/ui", lambda _r: RedirectResponse("/ui/", 308), methods=["GET"]),
        Mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static"),
    ]
    routes += [Route(path, page(h), methods=["GET"]) for path, h in gets]
    routes += [Route(path, page(h), methods=["POST"]) for path, h in posts]
    return routes
