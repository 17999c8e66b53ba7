"""The table of ``/api/v1`` endpoints: method, path, the least role, what it does.

The app routes from it and the OpenAPI document is built from it, so the two agree.
"""

from __future__ import annotations

from registry.remote.wire import API
from registry.server import admin, bundle, lists, records, uploads
from registry.server import endpoints as e
from registry.server.context import Endpoint

PAGED = ("page_size", "cursor")
_FILTERS = ("name", "base", "method", "alias", "tag", "data", "where", "status", "sort", "reverse")
_REF = ("ref!",)
# The query parameters each endpoint reads (by method and path after /api/v1), for the
# OpenAPI document; a trailing "!" marks a required one.
QUERY: dict[str, tuple[str, ...]] = {
    "GET /versions": (*_FILTERS, "limit", *PAGED, "page_token"),
    "GET /resolve": _REF,
    "GET /manifest": _REF,
    "GET /blobs/{sha256:str}": _REF,
    "GET /log": ("ref", "action", "actor", "limit", *PAGED),
    "GET /lineage": ("ref!", "depth"),
    "GET /compare": ("a!", "b!"),
    "GET /bases": PAGED,
    "GET /aliases/history": ("name!", "alias", *PAGED),
    "POST /push/bundle": ("header_bytes!",),
    "GET /tokens": PAGED,
    "GET /keys": PAGED,
    "GET /load-policy": _REF,
    "GET /known-base": _REF,
    "GET /bases/relations": PAGED,
}


def table() -> list[Endpoint]:
    a = API
    return [
        Endpoint("GET", f"{a}/versions", "reader", "List versions (paged)", e.list_versions),
        Endpoint("GET", f"{a}/resolve", "reader", "Resolve a reference (ETag)", e.resolve),
        Endpoint("GET", f"{a}/manifest", "reader", "A version's manifest (ETag)", e.manifest),
        Endpoint("GET", f"{a}/blobs/{{sha256:str}}", "reader", "Download a file", e.download_blob),
        Endpoint("POST", f"{a}/verify", "reader", "Re-hash and re-check a version", e.verify),
        Endpoint("GET", f"{a}/log", "reader", "Audit events", lists.log),
        Endpoint("GET", f"{a}/lineage", "reader", "Ancestors and descendants", e.lineage),
        Endpoint("GET", f"{a}/compare", "reader", "Compare two versions", e.compare),
        Endpoint("GET", f"{a}/bases", "reader", "Base model records", lists.bases),
        Endpoint("GET", f"{a}/aliases/history", "reader", "Alias moves", lists.alias_history),
        Endpoint("POST", f"{a}/aliases/check", "reader", "Evaluate alias gates", e.check_alias),
        Endpoint("PUT", f"{a}/uploads/{{sha256:str}}", "writer", "Upload a file", uploads.put),
        Endpoint("POST", f"{a}/uploads/presign", "writer", "Upload URLs", uploads.presign),
        Endpoint(
            "POST",
            f"{a}/uploads/{{sha256:str}}/staged",
            "writer",
            "Claim an upload",
            uploads.staged,
        ),
        Endpoint("POST", f"{a}/push", "writer", "Store uploaded files as a version", uploads.push),
        Endpoint(
            "POST", f"{a}/push/bundle", "writer", "Push files in one request", bundle.push_bundle
        ),
        Endpoint("POST", f"{a}/evals", "writer", "Record eval scores", e.record_eval),
        Endpoint("POST", f"{a}/sign", "admin", "Sign with a server key", e.sign),
        Endpoint("POST", f"{a}/aliases", "maintainer", "Move an alias (gated)", e.set_alias),
        Endpoint("POST", f"{a}/aliases/remove", "maintainer", "Remove an alias", e.remove_alias),
        Endpoint("POST", f"{a}/yank", "maintainer", "Yank a version", e.yank),
        Endpoint("POST", f"{a}/unyank", "maintainer", "Unyank a version", e.unyank),
        Endpoint("POST", f"{a}/remove", "maintainer", "Delete a version", e.remove),
        Endpoint("POST", f"{a}/gc", "admin", "Collect unreferenced blobs", e.gc, True),
        Endpoint("GET", f"{a}/tokens", "admin", "List tokens", lists.tokens, True),
        Endpoint("POST", f"{a}/tokens", "admin", "Create a token", e.create_token, True),
        Endpoint("POST", f"{a}/tokens/revoke", "admin", "Revoke a token", e.revoke_token, True),
        *_records(a),
        *_admin(a),
    ]


def _admin(a: str) -> list[Endpoint]:
    """What the server trusts and requires: signing keys and the promotion policy."""
    return [
        Endpoint("GET", f"{a}/keys", "admin", "List trusted keys", admin.list_keys, True),
        Endpoint("POST", f"{a}/keys", "admin", "Trust a public key", admin.trust_key, True),
        Endpoint("POST", f"{a}/keys/untrust", "admin", "Untrust a key", admin.untrust_key, True),
        Endpoint("GET", f"{a}/policy", "admin", "The promotion policy", admin.policy, True),
        Endpoint("PUT", f"{a}/policy", "admin", "Replace the policy", admin.set_policy, True),
        Endpoint("POST", f"{a}/policy/check", "admin", "Check a policy", admin.check_policy, True),
    ]


def _records(a: str) -> list[Endpoint]:
    """Tags, descriptions, base records, and the load policy a client applies."""
    r = records
    return [
        Endpoint("GET", f"{a}/load-policy", "reader", "Signature policy for a load", r.load_policy),
        Endpoint("GET", f"{a}/known-base", "reader", "The base trained on", r.known_base),
        Endpoint("POST", f"{a}/tags", "writer", "Set or remove tags", r.set_tags),
        Endpoint("POST", f"{a}/describe", "writer", "Set a description", r.describe),
        Endpoint("POST", f"{a}/bases", "writer", "Record a client's base", r.add_base, True),
        Endpoint("GET", f"{a}/bases/relations", "reader", "Base relations", lists.base_relations),
        Endpoint("POST", f"{a}/bases/link", "maintainer", "Relate two bases", r.link_bases, True),
    ]
