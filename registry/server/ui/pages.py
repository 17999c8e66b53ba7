"""The pages (GET): adapters list, an adapter's versions, a version, its lineage graph,
compare, base models, the audit log. Each reads through the registry as the visitor, a
page at a time, and shows nothing outside the visitor's namespace."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from registry.errors import ArgumentError, InvalidNameError, NotFoundError
from registry.lifecycle.results import AuditEvent, LineageNode
from registry.security.signature_rows import signatures_of
from registry.server.auth import Caller
from registry.server.query import is_whole_number
from registry.server.ui import flash
from registry.server.ui.lineage_graph import build_graph
from registry.server.ui.page import NOT_FOUND, Ui, UiProblem, Visitor, reader, render
from registry.store.base_records import base_state_check
from registry.store.catalog import browse
from registry.store.catalog.base_rows import relations
from registry.store.list_query import ListQuery
from registry.store.refs import parse_ref, validate_name
from registry.store.results import AdapterVersion

T = TypeVar("T")
PAGE_SIZE = 50


def _param(request: Request, key: str) -> str:
    value = request.query_params.get(key, "").strip()
    if "\x00" in value or len(value) > 512:
        raise UiProblem(400, f"the {key} field is too long or holds a NUL byte")
    return value


def _int(request: Request, key: str, default: int) -> int:
    text = _param(request, key)
    if not text:
        return default
    if not is_whole_number(text):
        raise UiProblem(400, f"{key} must be a whole number")
    return int(text)


async def _run(ui: Ui, caller: Caller, work: Callable[[], T]) -> T:
    try:
        return await ui.ctx.call(caller, work)
    except NotFoundError:
        raise UiProblem(404, NOT_FOUND) from None
    except (ArgumentError, InvalidNameError) as exc:
        raise UiProblem(400, str(exc)) from None


def _ref_in_scope(caller: Caller, text: str) -> str:
    """A reference the visitor may see; another namespace's looks like nothing at all."""
    if not text:
        raise UiProblem(400, "give a reference NAME@VERSION")
    try:
        ref = parse_ref(text)
    except InvalidNameError as exc:
        raise UiProblem(400, str(exc)) from None
    if not caller.covers(ref.name):
        raise UiProblem(404, NOT_FOUND)
    return text


@dataclass(frozen=True)
class ListForm:
    q: str
    name: str
    base: str
    method: str
    alias: str
    tag: str
    metric: str
    min: str
    status: str

    def as_dict(self) -> dict[str, str]:
        return dict(vars(self))


def _list_form(request: Request) -> ListForm:
    return ListForm(
        *(
            _param(request, k)
            for k in ("q", "name", "base", "method", "alias", "tag", "metric", "min", "status")
        )
    )


def _list_query(form: ListForm) -> ListQuery:
    tags: dict[str, str | None] = {}
    if form.tag:
        key, sep, value = form.tag.partition("=")
        tags[key.strip()] = value.strip() if sep else None
    where: tuple[str, ...] = ()
    if form.metric or form.min:
        if not (form.metric and form.min):
            raise UiProblem(400, "give both an eval metric and its least value")
        where = (f"{form.metric}>={form.min}",)
    status = form.status if form.status in ("active", "yanked") else None
    if form.status not in ("", "all", "active", "yanked"):
        raise UiProblem(400, "status must be all, active or yanked")
    return ListQuery(
        name=form.name or None,
        base=form.base or None,
        method=form.method or None,
        alias=form.alias or None,
        tags=tags or None,
        where=where,
        status=status,
    )


@dataclass(frozen=True)
class Count:
    """How many versions match: exact, or "more than" ``n`` when capped."""

    n: int
    capped: bool

    def __str__(self) -> str:
        return f"more than {self.n:,}" if self.capped else f"{self.n:,}"


@dataclass(frozen=True)
class Found:
    versions: list[AdapterVersion]
    count: Count
    more: bool  # a later page holds versions


async def _page_of_versions(
    ui: Ui, caller: Caller, query: ListQuery, search: str | None, page: int
) -> Found:
    catalog = ui.ctx.registry.catalog

    def work() -> Found:
        found = browse.browse_versions(
            catalog.engine,
            query.compile(),
            search=search,
            namespace=caller.namespace,
            offset=(page - 1) * PAGE_SIZE,
            size=PAGE_SIZE,
        )
        versions = catalog.get_many(found.ids)
        return Found(versions, Count(found.total, found.capped), found.more)

    return await _run(ui, caller, work)


def _pages(found: Found, page: int) -> dict[str, int | None]:
    """Previous and next pages; the last one only when the count is exact."""
    last = None if found.count.capped else max(1, -(-found.count.n // PAGE_SIZE))
    return {
        "page": page,
        "last": last,
        "prev": page - 1 if page > 1 else None,
        "next": page + 1 if found.more else None,
    }


async def adapters(ui: Ui, request: Request, visitor: Visitor) -> Response:
    caller = reader(visitor)
    form = _list_form(request)
    page = max(1, _int(request, "page", 1))
    found = await _page_of_versions(ui, caller, _list_query(form), form.q or None, page)
    return render(
        ui,
        request,
        visitor,
        "adapters.html",
        title="Adapters",
        form=form,
        versions=found.versions,
        count=found.count,
        pages=_pages(found, page),
    )


async def adapter(ui: Ui, request: Request, visitor: Visitor) -> Response:
    caller = reader(visitor)
    name = _param(request, "name")
    try:
        validate_name(name)
    except InvalidNameError as exc:
        raise UiProblem(400, str(exc)) from None
    if not caller.covers(name):
        raise UiProblem(404, NOT_FOUND)
    page = max(1, _int(request, "page", 1))
    query = ListQuery(name=name)
    found = await _page_of_versions(ui, caller, query, None, page)
    if found.count.n == 0:
        raise UiProblem(404, NOT_FOUND)
    history = await _run(ui, caller, lambda: ui.ctx.registry.alias_history(name))
    return render(
        ui,
        request,
        visitor,
        "adapter.html",
        title=name,
        name=name,
        versions=found.versions,
        count=found.count,
        pages=_pages(found, page),
        history=list(reversed(history))[:50],
    )


@dataclass(frozen=True)
class VersionDetails:
    version: AdapterVersion
    signatures: list[Any]
    base_check: Any
    history: list[Any]
    events: list[AuditEvent]
    hub_links: list[Any]


def _details(ui: Ui, ref: str) -> VersionDetails:
    from registry.hub.links import links_for_version

    registry = ui.ctx.registry
    version = registry.get(ref)
    exact = f"{version.name}@{version.version}"
    history = [
        h
        for h in registry.alias_history(version.name)
        if version.version in (h.version, h.previous)
    ]
    return VersionDetails(
        version,
        signatures_of(registry.catalog.engine, version.name, version.digest),
        base_state_check(registry.catalog, version),
        list(reversed(history))[:50],
        list(reversed(registry.log(exact, limit=50))),
        links_for_version(registry.catalog, version.name, version.version),
    )


async def version_page(ui: Ui, request: Request, visitor: Visitor) -> Response:
    caller = reader(visitor)
    ref = _ref_in_scope(caller, _param(request, "ref"))
    details = await _run(ui, caller, lambda: _details(ui, ref))
    v = details.version
    # An action refused just before (see actions): shown with its 4xx status.
    refused = request.query_params.get(flash.PARAM, "")
    refusal = flash.decode(refused, ref, visitor.session, ui.secret) if refused else None
    return render(
        ui,
        request,
        visitor,
        "version.html",
        200 if refusal is None else refusal.status,
        title=f"{v.name}@{v.version}",
        d=details,
        v=v,
        config=json.dumps(v.manifest.config, indent=2, sort_keys=True),
        gate=refusal and refusal.gate,
        error=refusal and refusal.error,
        done="" if refusal else _param(request, "done"),
    )


def _prune(nodes: tuple[LineageNode, ...], caller: Caller) -> tuple[LineageNode, ...]:
    return tuple(replace(n, links=_prune(n.links, caller)) for n in nodes if caller.covers(n.name))


async def lineage(ui: Ui, request: Request, visitor: Visitor) -> Response:
    caller = reader(visitor)
    ref = _ref_in_scope(caller, _param(request, "ref"))
    registry = ui.ctx.registry

    def work() -> tuple[Any, AdapterVersion]:
        version = registry.get(ref)
        return registry.lineage(f"{version.name}@{version.version}", depth=16), version

    report, version = await _run(ui, caller, work)
    report = replace(
        report,
        ancestors=_prune(report.ancestors, caller),
        descendants=_prune(report.descendants, caller),
    )
    return render(
        ui,
        request,
        visitor,
        "lineage.html",
        title=f"Lineage of {report.ref}",
        report=report,
        graph=build_graph(report),
        v=version,
        lineage=version.manifest.lineage,
    )


def _refs_of(v: AdapterVersion) -> set[str]:
    return {f"{v.name}@{v.version}", *(f"{v.name}@{alias}" for alias in v.aliases)}


async def compare(ui: Ui, request: Request, visitor: Visitor) -> Response:
    caller = reader(visitor)
    a, b = _param(request, "a"), _param(request, "b")
    result, others = None, []
    if a and b:
        a, b = _ref_in_scope(caller, a), _ref_in_scope(caller, b)
        result = await _run(ui, caller, lambda: ui.ctx.registry.compare(a, b))
    elif a or b:
        # One side given ("Compare with…" on a version page): the form with it filled
        # in, and the same adapter's other versions to pick the other side from.
        given = _ref_in_scope(caller, a or b)
        name = parse_ref(given).name
        found = await _page_of_versions(ui, caller, ListQuery(name=name), None, 1)
        others = [v for v in found.versions if given not in _refs_of(v)]
    return render(
        ui, request, visitor, "compare.html",
        title="Compare", a=a, b=b, result=result, others=others,
    )  # fmt: skip


async def bases(ui: Ui, request: Request, visitor: Visitor) -> Response:
    reader(visitor)
    records = await _run(ui, reader(visitor), ui.ctx.registry.bases)
    return render(ui, request, visitor, "bases.html", title="Base models", records=records)


def _related(ui: Ui, name: str) -> list[tuple[str, str]]:
    """Bases linked to ``name`` by a recorded relation, either way (the model tree)."""
    related = []
    for rel in relations(ui.ctx.registry.catalog):
        source, target = rel.source.partition("@")[0], rel.target.partition("@")[0]
        if source == name and target != name:
            related.append((target, rel.relation))
        elif target == name and source != name:
            related.append((source, rel.relation))
    return sorted(set(related))


async def base(ui: Ui, request: Request, visitor: Visitor) -> Response:
    caller = reader(visitor)
    name = _param(request, "name")
    if not name:
        raise UiProblem(400, "give a base model name")
    page = max(1, _int(request, "page", 1))
    records = [r for r in await _run(ui, caller, ui.ctx.registry.bases) if r.name == name]
    related = await _run(ui, caller, lambda: _related(ui, name))
    found = await _page_of_versions(ui, caller, ListQuery(base=name), None, page)
    others = []
    for other, relation in related[:20]:
        theirs = await _page_of_versions(ui, caller, ListQuery(base=other), None, 1)
        others.append((other, relation, theirs.versions[:10], theirs.count))
    return render(
        ui,
        request,
        visitor,
        "base_model.html",
        title=f"Base {name}",
        name=name,
        records=records,
        versions=found.versions,
        count=found.count,
        pages=_pages(found, page),
        others=others,
    )


async def audit(ui: Ui, request: Request, visitor: Visitor) -> Response:
    caller = reader(visitor)
    name, action, actor = (
        _param(request, "name"),
        _param(request, "action"),
        _param(request, "actor"),
    )
    before = _int(request, "before", 0) or None
    if name and not caller.covers(name):
        raise UiProblem(404, NOT_FOUND)

    def work() -> list[AuditEvent]:
        rows = browse.audit_page(
            ui.ctx.registry.catalog.engine,
            namespace=caller.namespace,
            name=name or None,
            actions=[action] if action else (),
            actor=actor or None,
            before=before,
            size=100,
        )
        return [
            AuditEvent(int(r.id), r.at, r.actor, r.action, r.name, r.version, json.loads(r.details))
            for r in rows
        ]

    events = await _run(ui, caller, work)
    older = events[-1].id if len(events) == 100 else None
    return render(
        ui,
        request,
        visitor,
        "audit.html",
        title="Audit log",
        events=events,
        form={"name": name, "action": action, "actor": actor},
        older=older,
    )
