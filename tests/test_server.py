"""``adapters server`` as a real process on 127.0.0.1, driven by the Python client and the
CLI, on SQLite and PostgreSQL: the API, its errors, paging, ETags, probes, tokens and the
audit log's actors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ROOT, ServedRegistry, running_server

from registry import (
    AccessError,
    GateError,
    NotFoundError,
    Registry,
    RemoteRegistry,
    ValidationError,
    YankedVersionWarning,
)

API = "/api/v1"


def remote(served: ServedRegistry, role: str = "admin") -> Registry:
    return Registry.open(served.url, token=served.tokens[role])


def headers(served: ServedRegistry, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.tokens[role]}"}


def cli(*args: str, token: str | None = None, env: dict[str, str] | None = None) -> (
    subprocess.CompletedProcess[str]
):
    import os

    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if token is not None:
        environment["ADAPTERS_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "registry.cli", *args],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip


def test_the_python_client_reads_and_annotates_through_the_server(
    served: ServedRegistry, tmp_path: Path
) -> None:
    reg = remote(served, "maintainer")
    assert isinstance(reg, RemoteRegistry)
    directory = write_adapter(tmp_path / "client-lora", seed=1)
    pushed = reg.push(directory, evals={"accuracy": 0.9}, tags={"team": "a"})
    assert pushed.created and pushed.version.name == "client-lora"
    again = reg.push(directory)
    assert not again.created and again.version.digest == pushed.version.digest

    got = reg.get("client-lora")
    assert got.digest == pushed.version.digest and got.tags == {"team": "a"}
    assert [v.ref for v in reg.list(name="client-*")] == [got.ref]
    reg.record_eval(got.ref, {"accuracy": 0.95}, dataset="gsm8k")
    change = reg.set_alias(got.ref, "prod", requires=["accuracy@gsm8k>=0.9"])
    assert change.version == got.version
    with pytest.raises(GateError) as refused:
        reg.set_alias(got.ref, "best", requires=["accuracy@gsm8k>=0.99"])
    assert refused.value.unmet
    assert reg.verify("client-lora@prod").ok
    exported = reg.export("client-lora@prod", tmp_path / "out")
    for name in exported.files:
        assert (tmp_path / "out" / name).read_bytes() == (directory / name).read_bytes()
    assert reg.lineage(got.ref).ref == got.ref
    assert reg.compare(got.ref, got.ref).digest_a == got.digest
    assert [c.alias for c in reg.alias_history("client-lora")] == ["prod"]
    assert reg.yank(got.ref, "broken").status == "yanked"
    with pytest.warns(YankedVersionWarning):
        reg.get(got.ref)
    reg.unyank(got.ref)
    # The audit log names the token, not the server's user.
    actors = {e.actor for e in reg.log(got.ref)}
    assert actors == {"maintainer"}
    with pytest.raises(NotFoundError):
        reg.get("client-lora@99")
    reg.close()


def test_a_push_is_checked_by_the_server(served: ServedRegistry, tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "broken-lora", seed=2)
    config = json.loads((directory / "adapter_config.json").read_text())
    config["r"] = -1
    (directory / "adapter_config.json").write_text(json.dumps(config))
    reg = remote(served, "writer")
    with pytest.raises(ValidationError):
        reg.push(directory)
    assert reg.list(name="broken-lora") == []


def test_errors_are_json_with_a_stable_code(served: ServedRegistry) -> None:
    h = headers(served, "reader")
    response = httpx2.get(f"{served.url}{API}/resolve", params={"ref": "no-such"}, headers=h)
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": response.json()["error"]["message"]}
    }
    response = httpx2.get(f"{served.url}{API}/resolve", params={"ref": "Bad Name"}, headers=h)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_name"
    response = httpx2.get(f"{served.url}{API}/nothing-here", headers=h)
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_route"
    response = httpx2.delete(f"{served.url}{API}/versions", headers=h)
    assert response.status_code == 405 and "error" in response.json()


def test_lists_are_paged(served: ServedRegistry, tmp_path: Path) -> None:
    reg = remote(served, "writer")
    for seed in range(5):
        reg.push(write_adapter(tmp_path / f"paged-{seed}", seed=10 + seed), name="paged")
    h = headers(served, "reader")
    seen: list[str] = []
    params: dict[str, str | int] = {"name": "paged", "page_size": 2}
    pages = 0
    while True:
        body = httpx2.get(f"{served.url}{API}/versions", params=params, headers=h).json()
        seen += [item["version"] for item in body["items"]]
        pages += 1
        if body["next_page_token"] is None:
            break
        params["page_token"] = body["next_page_token"]
    assert pages == 3 and seen == ["1", "2", "3", "4", "5"]
    assert [v.version for v in reg.list(name="paged")] == seen
    assert [v.version for v in reg.list(name="paged", sort="version", limit=2)] == ["1", "2"]
    bad = httpx2.get(f"{served.url}{API}/versions", params={"page_token": "zz"}, headers=h)
    assert bad.status_code == 400


def test_resolve_and_manifest_carry_etags(served: ServedRegistry, tmp_path: Path) -> None:
    reg = remote(served, "writer")
    version = reg.push(write_adapter(tmp_path / "etag-lora", seed=3)).version
    h = headers(served, "reader")
    for path in ("resolve", "manifest"):
        first = httpx2.get(f"{served.url}{API}/{path}", params={"ref": version.ref}, headers=h)
        etag = first.headers["etag"]
        second = httpx2.get(
            f"{served.url}{API}/{path}",
            params={"ref": version.ref},
            headers={**h, "If-None-Match": etag},
        )
        assert second.status_code == 304 and second.headers["etag"] == etag
    assert first.headers["etag"] == f'"{version.digest}"'
    # An annotation changes what resolve returns, so its ETag changes.
    before = httpx2.get(f"{served.url}{API}/resolve", params={"ref": version.ref}, headers=h)
    reg.record_eval(version.ref, {"f1": 0.5})
    after = httpx2.get(f"{served.url}{API}/resolve", params={"ref": version.ref}, headers=h)
    assert before.headers["etag"] != after.headers["etag"]


def test_probes_openapi_and_access_log(served: ServedRegistry) -> None:
    assert httpx2.get(f"{served.url}/healthz").json()["status"] == "ok"
    assert httpx2.get(f"{served.url}/readyz").json() == {"status": "ready"}
    document = httpx2.get(f"{served.url}{API}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert document["paths"][f"{API}/resolve"]["get"]["x-required-role"] == "reader"
    assert document["paths"][f"{API}/remove"]["post"]["x-required-role"] == "maintainer"
    httpx2.get(f"{served.url}{API}/versions", headers=headers(served, "reader"))
    log = served.server.access_log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("actor") == "reader" and line.get("path") == f"{API}/versions"
               for line in lines)  # fmt: skip
    for secret in served.tokens.values():
        assert secret not in log


def test_tokens_are_managed_remotely_by_an_admin_only(served: ServedRegistry) -> None:
    admin = remote(served, "admin")
    created = admin.create_token("short-lived", "reader", expires="1h")
    assert created.secret.startswith("adp_") and created.info.expires_at is not None
    listed = {t.name: t for t in admin.tokens()}
    assert listed["short-lived"].role == "reader"
    assert created.secret not in json.dumps([t.to_dict() for t in listed.values()])
    user = Registry.open(served.url, token=created.secret)
    assert isinstance(user.list(), list)
    admin.revoke_token("short-lived")
    with pytest.raises(AccessError, match="revoked"):
        user.list()
    with pytest.raises(AccessError):
        remote(served, "maintainer").create_token("sneaky", "admin")


def test_the_cli_works_against_the_server(served: ServedRegistry, tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "cli-lora", seed=4)
    writer, maintainer = served.tokens["writer"], served.tokens["maintainer"]
    pushed = cli("--registry", served.url, "push", str(directory), "--json", token=writer)
    assert pushed.returncode == 0, pushed.stderr
    ref = json.loads(pushed.stdout)["ref"]
    env = {"ADAPTERS_URL": served.url}
    listed = cli("list", "--json", token=writer, env=env)
    assert listed.returncode == 0, listed.stderr
    assert ref in [item["ref"] for item in json.loads(listed.stdout)]
    assert cli("--registry", served.url, "show", ref, token=writer).returncode == 0
    assert cli("--registry", served.url, "verify", ref, token=writer).returncode == 0
    denied = cli("--registry", served.url, "yank", ref, "--reason", "x", token=writer)
    assert denied.returncode == 1 and "maintainer" in denied.stderr
    assert cli("--registry", served.url, "yank", ref, "--reason", "x",
               token=maintainer).returncode == 0  # fmt: skip
    out = tmp_path / "exported"
    exported = cli("--registry", served.url, "export", ref, str(out), token=writer)
    assert exported.returncode == 0, exported.stderr
    assert (out / "adapter_config.json").is_file()
    nobody = cli("--registry", served.url, "list")
    assert nobody.returncode == 1 and "set ADAPTERS_TOKEN" in nobody.stderr


def test_tokens_from_the_cli_on_the_servers_own_registry(tmp_path: Path) -> None:
    home = tmp_path / "own"
    Registry.open(home, create=True).close()
    created = cli("--registry", str(home), "token", "create", "ci", "--role", "writer",
                  "--namespace", "team", "--expires", "30d")  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("adp_") and "shown once" in created.stderr
    listed = cli("--registry", str(home), "token", "list", "--json")
    (entry,) = json.loads(listed.stdout)
    assert entry["namespace"] == "team" and secret not in listed.stdout
    assert cli("--registry", str(home), "token", "create", "ci", "--role",
               "writer").returncode == 1  # fmt: skip
    bad = cli("--registry", str(home), "token", "create", "x", "--role", "reader",
              "--expires", "yesterday")  # fmt: skip
    assert bad.returncode == 1 and "--expires" in bad.stderr
    assert cli("--registry", str(home), "token", "revoke", "ci").returncode == 0
    assert "revoked" in cli("--registry", str(home), "token", "list").stdout


def test_anonymous_reads_only_with_the_flag(tmp_path: Path) -> None:
    home = tmp_path / "anon"
    with Registry.open(home, create=True) as local:
        local.push(write_adapter(tmp_path / "open-lora", seed=5))
    with running_server(home, args=("--anonymous-read",)) as server:
        reader = Registry.open(server.url)
        assert [v.name for v in reader.list()] == ["open-lora"]
        reader.export("open-lora", tmp_path / "out")
        with pytest.raises(AccessError):
            reader.record_eval("open-lora@1", {"f1": 1.0})
        with pytest.raises(AccessError):
            reader.push(write_adapter(tmp_path / "other", seed=6))
        reader.close()
    with running_server(home) as server, pytest.raises(AccessError):
        Registry.open(server.url).list()


def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    home = tmp_path / "graceful"
    with Registry.open(home, create=True) as local:
        token = local.create_token("w", "writer").secret
    with running_server(home) as server:
        directory = write_adapter(tmp_path / "late-lora", seed=7)
        client = Registry.open(server.url, token=token)
        # A slow upload: the server is told to stop while the body is still arriving.
        data = (directory / "adapter_model.safetensors").read_bytes()
        import hashlib
        import threading
        import time

        digest = hashlib.sha256(data).hexdigest()

        def slow() -> object:
            for index in range(0, len(data), max(1, len(data) // 4)):
                yield data[index : index + max(1, len(data) // 4)]
                time.sleep(0.3)

        result: dict[str, int] = {}

        def upload() -> None:
            response = httpx2.put(
                f"{server.url}{API}/uploads/{digest}",
                content=slow(),  # type: ignore[arg-type]
                headers={"Authorization": f"Bearer {token}", "Content-Length": str(len(data))},
                timeout=30,
            )
            result["status"] = response.status_code

        thread = threading.Thread(target=upload)
        thread.start()
        time.sleep(0.4)
        server.process.send_signal(signal.SIGTERM)
        thread.join(30)
        assert result["status"] == 201
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert server.process.wait(30) in (0, -signal.SIGTERM)
        assert "Traceback" not in server.access_log()
        client.close()
