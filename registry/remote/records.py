"""Annotations and base records through a registry server: tags and descriptions are
set in the server; a base is fingerprinted here (its weights are on this machine) and the
record sent, which the server checks and labels as the client's (docs/server.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from registry.remote import wire
from registry.remote.codec import decode, encode
from registry.remote.loading import RemoteLoading
from registry.remote.paging import every_page
from registry.store.refs import Ref
from registry.store.results import BaseModelRecord, BaseRelation

if TYPE_CHECKING:
    from registry.lifecycle.results import DescriptionChange, TagChange

T = TypeVar("T")


class RemoteRecords(RemoteLoading):
    """Tags, descriptions and base records of ``RemoteRegistry``."""

    page_size: int  # set by the client

    def _every(self, path: str, kind: type[T], **params: Any) -> list[T]:
        """Every item of a paged list, following its cursors."""
        get = lambda p, **kw: self._send("GET", p, **kw)  # noqa: E731
        return every_page(get, path, kind, self.page_size, **params)

    def set_tags(
        self,
        ref: str | Ref,
        tags: Mapping[str, str] | None = None,
        *,
        remove: Sequence[str] = (),
    ) -> TagChange:
        from registry.lifecycle.results import TagChange

        body = wire.TagsBody(str(ref), dict(tags or {}), list(remove))
        return decode(TagChange, self._send_json("/tags", body))

    def describe(self, ref: str | Ref, text: str) -> DescriptionChange:
        from registry.lifecycle.results import DescriptionChange

        body = wire.DescribeBody(str(ref), text)
        return decode(DescriptionChange, self._send_json("/describe", body))

    def add_base(
        self,
        source: str | Path,
        *,
        name: str | None = None,
        version: str | None = None,
        quantization: str | None = None,
        exhaustive: bool = False,
    ) -> BaseModelRecord:
        """Fingerprint ``source`` here (a directory, or a Hub id in this machine's HF cache)
        and record it in the server."""
        from registry.store.base_records import check_quantization, read_base_source

        check_quantization(quantization)
        target, default_name, revision = read_base_source(str(source), exhaustive=exhaustive)
        record = self._base_record(target, str(source))
        body = wire.BaseBody(record, name or default_name, revision or None, version, quantization)
        return decode(BaseModelRecord, self._send_json("/bases", body))

    def base_relations(self) -> list[BaseRelation]:
        return self._every("/bases/relations", BaseRelation)

    def link_bases(self, source: str, target: str, relation: str) -> BaseRelation:
        body = wire.BaseLinkBody(source, target, relation)
        return decode(BaseRelation, self._send_json("/bases/link", body))

    def _send_json(self, path: str, body: object) -> object:
        return self._send("POST", path, json=encode(body)).json()

