"""The OpenAPI document of ``/api/v1``, built from the route table (``routes.table()``) so
that it lists exactly what the server answers: every endpoint with its method, path and
query parameters and the least role it needs (``x-required-role``), the probes and the
document itself (no token), and the error body with every stable ``code`` it may carry.
The web UI (``/ui``, HTML for people) is not part of the API and not listed."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.release import __version__
from registry.remote.wire import API, ERROR_CODES
from registry.server import routes
from registry.server.context import Endpoint

# Codes of the HTTP layer itself (auth, limits, routing, probes), besides ERROR_CODES.
HTTP_CODES = (
    "unauthenticated",
    "forbidden",
    "bad_json",
    "bad_length",
    "length_required",
    "too_large",
    "timeout",
    "method_not_allowed",
    "no_route",
    "not_ready",
    "internal",
)
_INTEGER_QUERY = {"page_size", "limit", "depth", "header_bytes"}
_REPEATED_QUERY = {"tag", "where", "action"}  # may be given more than once


def error_codes() -> list[str]:
    """Every ``code`` an error body may carry."""
    return sorted({code for _kind, code, _status in ERROR_CODES} | set(HTTP_CODES))


def openapi_document(table: list[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for e in table:
        path = e.path.replace(":str}", "}")
        operation: dict[str, Any] = {
            "summary": e.summary,
            "x-required-role": e.role,
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "the typed result as JSON"},
                "4XX": {"$ref": "#/components/responses/Error"},
                "5XX": {"$ref": "#/components/responses/Error"},
            },
        }
        if e.global_only:
            operation["x-token-without-namespace"] = True
        query = routes.QUERY.get(f"{e.method} {e.path[len(API) :]}", ())
        parameters = [_query_parameter(name) for name in query]
        if "{sha256}" in path:
            parameters.insert(
                0, {"name": "sha256", "in": "path", "required": True, "schema": {"type": "string"}}
            )
        if parameters:
            operation["parameters"] = parameters
        paths.setdefault(path, {})[e.method.lower()] = operation
    for path, summary in (
        ("/healthz", "The process answers"),
        ("/readyz", "The catalog and the blob store answer (503 not_ready if not)"),
        (f"{API}/openapi.json", "This document"),
    ):
        paths[path] = {"get": {"summary": summary, "security": [], "responses": _OPEN}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "adapter-registry", "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": {
                    "description": "{error: {code, message}}: a stable code, a one-line message",
                    "content": {"application/json": {"schema": _error_schema()}},
                }
            },
        },
    }


_OPEN = {
    "200": {"description": "JSON"},
    "5XX": {"$ref": "#/components/responses/Error"},
}


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": error_codes()},
                    "message": {"type": "string"},
                    "unmet": {"type": "array", "items": {"type": "string"}},
                    "subject": {"type": "string"},
                    "problems": {"type": "array", "items": {"type": "string"}},
                },
            }
        },
    }


def openapi_route(table: list[Endpoint]) -> Any:
    document = openapi_document(table)

    async def openapi(_request: Request) -> Response:
        return JSONResponse(document)

    return openapi


def _query_parameter(declared: str) -> dict[str, Any]:
    name = declared.rstrip("!")
    schema: dict[str, Any] = (
        {"type": "integer", "minimum": 1} if name in _INTEGER_QUERY else {"type": "string"}
    )
    if name in _REPEATED_QUERY:
        schema = {"type": "array", "items": schema}
    if name == "cursor":
        schema["description"] = "next_cursor of the previous page; omit for the first"
    return {"name": name, "in": "query", "required": declared.endswith("!"), "schema": schema}
