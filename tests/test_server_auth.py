"""The authorisation matrix: every endpoint x every role x inside / outside the token's
namespace x missing, unknown, expired and revoked tokens -> allowed or refused, and a
refusal names nothing stored (no version names, no digests)."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.security.tokens import ROLES, create_token
from registry.server.routes import table

API = "/api/v1"
UPLOAD = b"matrix upload bytes"
UPLOAD_SHA = hashlib.sha256(UPLOAD).hexdigest()
Request = tuple[str, str, dict[str, Any]]
_counter = itertools.count()


def _bundle(name: str) -> dict[str, Any]:
    header = json.dumps({"push": {"files": {"adapter_config.json": UPLOAD_SHA}, "name": name},
                         "sizes": {"adapter_config.json": len(UPLOAD)}}).encode()  # fmt: skip
    return {"params": {"header_bytes": len(header)}, "content": header + UPLOAD}


def _requests(ref: str, digest: str) -> dict[tuple[str, str], Callable[[], Request]]:
    """One request per endpoint, aimed at ``ref`` (its name decides the namespace)."""
    name = ref.partition("@")[0]
    j = lambda body: {"json": body}  # noqa: E731
    return {
        ("GET", f"{API}/versions"): lambda: ("GET", f"{API}/versions", {"params": {"name": name}}),
        ("GET", f"{API}/resolve"): lambda: ("GET", f"{API}/resolve", {"params": {"ref": ref}}),
        ("GET", f"{API}/manifest"): lambda: ("GET", f"{API}/manifest", {"params": {"ref": ref}}),
        ("GET", f"{API}/blobs/{{sha256:str}}"): lambda: (
            "GET", f"{API}/blobs/{digest}", {"params": {"ref": ref}}),
        ("POST", f"{API}/verify"): lambda: ("POST", f"{API}/verify", j({"ref": ref})),
        ("GET", f"{API}/log"): lambda: ("GET", f"{API}/log", {"params": {"ref": ref}}),
        ("GET", f"{API}/lineage"): lambda: ("GET", f"{API}/lineage", {"params": {"ref": ref}}),
        ("GET", f"{API}/compare"): lambda: (
            "GET", f"{API}/compare", {"params": {"a": ref, "b": ref}}),
        ("GET", f"{API}/bases"): lambda: ("GET", f"{API}/bases", {}),
        ("GET", f"{API}/aliases/history"): lambda: (
            "GET", f"{API}/aliases/history", {"params": {"name": name}}),
        ("POST", f"{API}/aliases/check"): lambda: (
            "POST", f"{API}/aliases/check", j({"ref": ref, "alias": "matrix"})),
        ("PUT", f"{API}/uploads/{{sha256:str}}"): lambda: (
            "PUT", f"{API}/uploads/{UPLOAD_SHA}", {"content": UPLOAD}),
        ("POST", f"{API}/uploads/presign"): lambda: (
            "POST", f"{API}/uploads/presign", j({"files": [UPLOAD_SHA]})),
        ("POST", f"{API}/uploads/{{sha256:str}}/staged"): lambda: (
            "POST", f"{API}/uploads/{UPLOAD_SHA}/staged", j({"key": "incoming/matrix"})),
        ("POST", f"{API}/push"): lambda: (
            "POST", f"{API}/push", j({"files": {"adapter_config.json": "0" * 64}, "name": name})),
        ("POST", f"{API}/push/bundle"): lambda: ("POST", f"{API}/push/bundle", _bundle(name)),
        ("POST", f"{API}/evals"): lambda: (
            "POST", f"{API}/evals", j({"ref": ref, "scores": {"f1": 0.5}})),
        ("POST", f"{API}/sign"): lambda: ("POST", f"{API}/sign", j({"ref": ref, "key": "none"})),
        ("POST", f"{API}/aliases"): lambda: (
            "POST", f"{API}/aliases", j({"ref": ref, "alias": "matrix"})),
        ("POST", f"{API}/aliases/remove"): lambda: (
            "POST", f"{API}/aliases/remove", j({"name": name, "alias": "absent"})),
        ("POST", f"{API}/yank"): lambda: (
            "POST", f"{API}/yank", j({"ref": f"{name}@99", "reason": "matrix"})),
        ("POST", f"{API}/unyank"): lambda: ("POST", f"{API}/unyank", j({"ref": ref})),
        ("POST", f"{API}/remove"): lambda: ("POST", f"{API}/remove", j({"ref": f"{name}@99"})),
        ("POST", f"{API}/gc"): lambda: ("POST", f"{API}/gc", j({"dry_run": True})),
        ("GET", f"{API}/tokens"): lambda: ("GET", f"{API}/tokens", {}),
        ("POST", f"{API}/tokens"): lambda: (
            "POST", f"{API}/tokens", j({"name": f"made-{next(_counter)}", "role": "reader"})),
        ("POST", f"{API}/tokens/revoke"): lambda: (
            "POST", f"{API}/tokens/revoke", j({"name": "absent"})),
        ("GET", f"{API}/load-policy"): lambda: (
            "GET", f"{API}/load-policy", {"params": {"ref": ref}}),
        ("GET", f"{API}/known-base"): lambda: (
            "GET", f"{API}/known-base", {"params": {"ref": ref}}),
        ("POST", f"{API}/tags"): lambda: (
            "POST", f"{API}/tags", j({"ref": ref, "tags": {"matrix": "1"}})),
        ("POST", f"{API}/describe"): lambda: (
            "POST", f"{API}/describe", j({"ref": ref, "text": "matrix"})),
        ("POST", f"{API}/bases"): lambda: (
            "POST", f"{API}/bases",
            j({"record": {"label": "m", "fingerprint_sha256": "0" * 64}, "name": "m"})),
        ("GET", f"{API}/bases/relations"): lambda: ("GET", f"{API}/bases/relations", {}),
        ("POST", f"{API}/bases/link"): lambda: (
            "POST", f"{API}/bases/link",
            j({"source": "absent", "target": "absent-too", "relation": "equivalent"})),
        ("GET", f"{API}/keys"): lambda: ("GET", f"{API}/keys", {}),
        ("POST", f"{API}/keys"): lambda: (
            "POST", f"{API}/keys", j({"name": f"matrix-{next(_counter)}", "public_key": _pem()})),
        ("POST", f"{API}/keys/untrust"): lambda: (
            "POST", f"{API}/keys/untrust", j({"name": "absent"})),
        ("GET", f"{API}/policy"): lambda: ("GET", f"{API}/policy", {}),
        # Invalid on purpose (an admin gets 422): the module's server keeps no policy.
        ("PUT", f"{API}/policy"): lambda: ("PUT", f"{API}/policy", j({"document": {"version": 1}})),
        ("POST", f"{API}/policy/check"): lambda: (
            "POST", f"{API}/policy/check", j({"document": {"version": 1, "rules": []}})),
    }  # fmt: skip


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


@pytest.fixture(scope="module")
def targets(served: ServedRegistry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("matrix")
    with Registry.open(served.home, database_url=served.database_url) as local:
        inside = local.push(write_adapter(root / "a", seed=1), name="team/model").version
        outside = local.push(write_adapter(root / "b", seed=2), name="other/model").version
        engine = local.catalog.engine
        past = datetime.now(UTC) - timedelta(minutes=1)
        expired = create_token(engine, "expired", "admin", expires_at=past).secret
        revoked = local.create_token("revoked", "admin").secret
        local.revoke_token("revoked")
    return {"inside": inside, "outside": outside, "expired": expired, "revoked": revoked}


def test_every_endpoint_is_in_the_matrix() -> None:
    listed = {(e.method, e.path) for e in table()}
    assert listed == set(_requests("x@1", "0" * 64))


@pytest.mark.parametrize("credential", ["missing", "garbage", "expired", "revoked", "basic"])
def test_no_valid_token_is_refused_everywhere(
    served: ServedRegistry, targets: dict[str, Any], credential: str
) -> None:
    header = {
        "missing": {},
        "garbage": {"Authorization": "Bearer adp_" + "x" * 43},
        "expired": {"Authorization": f"Bearer {targets['expired']}"},
        "revoked": {"Authorization": f"Bearer {targets['revoked']}"},
        "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    }[credential]
    inside = targets["inside"]
    for make in _requests(inside.ref, inside.files[0].sha256).values():
        method, path, kwargs = make()
        response = httpx2.request(method, served.url + path, headers=header, timeout=60, **kwargs)
        assert response.status_code == 401, (credential, method, path, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
        assert inside.digest not in response.text and "team/" not in response.text


@pytest.mark.parametrize("token", [*ROLES, *(f"team-{r}" for r in ROLES)])
def test_roles_and_namespaces(served: ServedRegistry, targets: dict[str, Any], token: str) -> None:
    role = token.removeprefix("team-")
    namespaced = token.startswith("team-")
    endpoints = {(e.method, e.path): e for e in table()}
    headers = {"Authorization": f"Bearer {served.tokens[token]}"}
    for where in ("inside", "outside"):
        version = targets[where]
        hidden = targets["outside"]
        for key, make in _requests(version.ref, version.files[0].sha256).items():
            endpoint = endpoints[key]
            method, path, kwargs = make()
            response = httpx2.request(
                method, served.url + path, headers=headers, timeout=60, **kwargs
            )
            enough = ROLES.index(role) >= ROLES.index(endpoint.role)
            # Lists are filtered to the namespace rather than refused (asserted empty below).
            scoped = endpoint.global_only or key[1] in (
                f"{API}/bases", f"{API}/bases/relations", f"{API}/versions"
            )
            names_target = not scoped and not key[1].startswith(f"{API}/uploads/")
            allowed = (
                enough
                and not (namespaced and endpoint.global_only)
                and not (namespaced and where == "outside" and names_target)
            )
            context = (token, where, method, path, response.status_code, response.text[:200])
            if allowed:
                assert response.status_code not in (401, 403), context
                assert response.status_code < 500, context
            else:
                assert response.status_code == 403, context
                assert response.json()["error"]["code"] == "forbidden", context
            if namespaced and key[1] == f"{API}/versions" and where == "outside":
                assert response.json()["items"] == [], context
            if namespaced:
                # Nothing of another namespace leaks, allowed or not.
                assert hidden.digest not in response.text, context
                assert "other/model" not in response.text, context


def test_a_namespaced_list_and_log_show_only_the_namespace(
    served: ServedRegistry, targets: dict[str, Any]
) -> None:
    reg = Registry.open(served.url, token=served.tokens["team-reader"])
    assert {v.name for v in reg.list()} == {"team/model"}
    assert {e.name for e in reg.log()} == {"team/model"}
    reg.close()


def test_no_partial_write_on_a_refused_upload(
    served: ServedRegistry, targets: dict[str, Any], tmp_path: Path
) -> None:
    data = b"refused bytes"
    sha = hashlib.sha256(data).hexdigest()
    response = httpx2.put(
        f"{served.url}{API}/uploads/{sha}",
        content=data,
        headers={"Authorization": f"Bearer {served.tokens['reader']}"},
    )
    assert response.status_code == 403
    uploads = served.home / "tmp" / "uploads"
    assert not (uploads / sha).exists()
