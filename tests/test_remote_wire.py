"""Request bodies as the client sends them (registry/remote/wire.py)."""

from __future__ import annotations

from registry.remote import wire
from registry.store.manifest import Lineage, ParentRef


def test_a_body_leaves_out_the_fields_at_their_defaults_and_reads_back_whole() -> None:
    # A server older than a field still takes a body that does not use it: a plain push
    # names none of the fields a derived push may add.
    plain = wire.PushBody(files={"adapter_config.json": "a" * 64}, name="team/x")
    sent = wire.body_json(plain)
    assert sent == {"files": {"adapter_config.json": "a" * 64}, "name": "team/x"}
    assert wire.parse_body(wire.PushBody, sent) == plain
    lineage = Lineage("combine", (ParentRef("other/y", "1", "sha256:" + "b" * 64),), {}, "0")
    derived = wire.PushBody(
        files={"adapter_config.json": "a" * 64}, name="team/x", lineage=lineage,
        lineage_outside_namespace=True, tags={"k": "v"},
    )  # fmt: skip
    sent = wire.body_json(derived)
    assert sent["lineage_outside_namespace"] is True and sent["tags"] == {"k": "v"}
    assert wire.parse_body(wire.PushBody, sent) == derived
