"""Operating ``adapters server``: a stop by SIGTERM or SIGINT that lets a push in flight
finish and exits 0, readiness that follows the catalog and the blob store, and
conditional requests answered as RFC 9110 says."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from conftest import ServerStore
from support.handmade import write_adapter
from support.server import ServedRegistry, bundle_parts, running_server, served_registry

from registry import Registry

API = "/api/v1"


def _slow_bundle(directory: Path, name: str, pause: float) -> tuple[Iterator[bytes], int, int]:
    """A ``/push/bundle`` body sent in pieces ``pause`` seconds apart; (body, header
    length, total length)."""
    header, payload = bundle_parts(directory, name)
    content = header + payload
    step = max(1, len(content) // 5)

    def pieces() -> Iterator[bytes]:
        for index in range(0, len(content), step):
            yield content[index : index + step]
            time.sleep(pause)

    return pieces(), len(header), len(content)


def _push_in_background(
    url: str, token: str, directory: Path, name: str, pause: float
) -> tuple[threading.Thread, dict[str, object]]:
    body, header_bytes, total = _slow_bundle(directory, name, pause)
    result: dict[str, object] = {}

    def push() -> None:
        try:
            response = httpx2.post(
                f"{url}{API}/push/bundle", params={"header_bytes": header_bytes},
                content=body,  # type: ignore[arg-type]
                headers={"Authorization": f"Bearer {token}", "Content-Length": str(total)},
                timeout=60,
            )  # fmt: skip
            result["status"] = response.status_code
        except httpx2.HTTPError as exc:
            result["error"] = exc

    thread = threading.Thread(target=push)
    thread.start()
    return thread, result


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_a_push_in_flight_finish_then_exits_0(
    tmp_path: Path, sig: signal.Signals
) -> None:
    home = tmp_path / "home"
    with Registry.open(home, create=True) as local:
        token = local.create_token("w", "writer").secret
    with running_server(home) as server:
        directory = write_adapter(tmp_path / "late-lora", seed=7)
        thread, result = _push_in_background(server.url, token, directory, "late-lora", 0.4)
        time.sleep(0.5)
        server.process.send_signal(sig)
        time.sleep(0.5)
        # New connections are refused while the push finishes.
        with pytest.raises(httpx2.ConnectError):
            httpx2.get(f"{server.url}/healthz", timeout=5)
        thread.join(60)
        assert result.get("status") == 201, result
        assert server.process.wait(30) == 0
        log = server.access_log()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    # What the server said about the stop: its info lines after the start-up line.
    said = [e["message"] for e in events if e.get("logger") == "registry.server"
            and e["level"] == "info" and "listen" not in e]  # fmt: skip
    assert said[0].startswith(f"{sig.name}: stopping;") and said[-1] == "stopped", said
    assert "Traceback" not in log
    with Registry.open(home) as local:
        assert [v.ref for v in local.list()] == ["late-lora@1"]


def test_a_second_signal_stops_at_once_and_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry.open(home, create=True) as local:
        token = local.create_token("w", "writer").secret
    with running_server(home) as server:
        directory = write_adapter(tmp_path / "cut-lora", seed=8)
        thread, result = _push_in_background(server.url, token, directory, "cut-lora", 2.0)
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert server.process.wait(30) == 1
        assert time.monotonic() - started < 10  # not the 120 s the first signal allows
        thread.join(60)
        log = server.access_log()
    assert "SIGTERM again: stopping now" in log
    assert "status" not in result or result["status"] != 201
    with Registry.open(home) as local:  # the push cut off left no version
        assert local.list() == []


def test_readyz_follows_the_blob_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Registry.open(home, create=True).close()
    with running_server(home) as server:
        assert httpx2.get(f"{server.url}/readyz").json() == {"status": "ready"}
        objects = home / "objects"
        shutil.move(objects, tmp_path / "unmounted")
        response = httpx2.get(f"{server.url}/readyz")
        assert response.status_code == 503
        assert response.json()["error"] == {
            "code": "not_ready", "message": "the blob store cannot be reached"
        }  # fmt: skip
        assert httpx2.get(f"{server.url}/healthz").status_code == 200  # the process answers
        shutil.move(tmp_path / "unmounted", objects)
        assert httpx2.get(f"{server.url}/readyz").json() == {"status": "ready"}


def _get(served: ServedRegistry, path: str, ref: str, match: str | None) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {served.tokens['admin']}"}
    if match is not None:
        headers["If-None-Match"] = match
    return httpx2.get(f"{served.url}{API}/{path}", params={"ref": ref}, headers=headers)


@pytest.mark.parametrize("path", ["resolve", "manifest"])
def test_if_none_match_as_rfc_9110_reads_it(
    served: ServedRegistry, tmp_path: Path, path: str
) -> None:
    reg = Registry.open(served.url, token=served.tokens["admin"])
    name = f"cond-{path}"
    reg.push(write_adapter(tmp_path / name, seed=11))
    ref = f"{name}@1"
    etag = _get(served, path, ref, None).headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    # Weak comparison: W/ on either side matches; any entity-tag of a list; "*".
    for header in (etag, f"W/{etag}", f'"other", {etag}', f'W/"x" ,W/{etag}', "*"):
        answer = _get(served, path, ref, header)
        assert answer.status_code == 304 and answer.headers["etag"] == etag, header
        assert answer.content == b""
    for header in ('"other"', 'W/"other", "x"', etag.strip('"'), ""):
        assert _get(served, path, ref, header).status_code == 200, header
    reg.close()


def test_an_etag_changes_with_what_resolve_answers(served: ServedRegistry, tmp_path: Path) -> None:
    reg = Registry.open(served.url, token=served.tokens["admin"])
    reg.push(write_adapter(tmp_path / "cond-moves", seed=12))
    reg.push(write_adapter(tmp_path / "cond-moves-2", seed=13), name="cond-moves")
    reg.set_alias("cond-moves@1", "prod")
    changes = [
        lambda: reg.set_alias("cond-moves@2", "prod"),
        lambda: reg.record_eval("cond-moves@2", {"f1": 0.7}),
        lambda: reg.set_tags("cond-moves@2", {"team": "a"}),
        lambda: reg.yank("cond-moves@2", reason="bad"),
    ]
    etag = _get(served, "resolve", "cond-moves@prod", None).headers["etag"]
    for change in changes:
        change()
        answer = _get(served, "resolve", "cond-moves@prod", etag)
        assert answer.status_code == 200 and answer.headers["etag"] != etag
        etag = answer.headers["etag"]
        assert _get(served, "resolve", "cond-moves@prod", etag).status_code == 304
    reg.close()


def test_the_log_is_json_lines_with_no_secret(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry.open(home, create=True) as local:
        token = local.create_token("alice", "reader").secret
    with running_server(home) as server:
        httpx2.get(
            f"{server.url}{API}/versions", params={"token": "adp_inthequery", "name": "x"},
            headers={"Authorization": f"Bearer {token}", "Cookie": "adapters_ui=cookie-secret"},
        )  # fmt: skip
        httpx2.get(f"{server.url}{API}/versions", headers={"Authorization": "Bearer adp_wrong"})
        assert server.stop() == 0
        log = server.access_log()
    for secret in (token, "adp_inthequery", "cookie-secret", "adp_wrong"):
        assert secret not in log
    events = [json.loads(line) for line in log.splitlines()]  # every line, none in plain text
    access = [e for e in events if e.get("path", "").startswith(API)]
    assert [(e["path"], e["status"], e["actor"]) for e in access] == [
        (f"{API}/versions", 200, "alice"), (f"{API}/versions", 401, None)
    ]  # fmt: skip
    assert all(e["time"].endswith("+00:00") for e in events)
    assert all(next(iter(e)) == "time" for e in events)


def test_the_start_is_logged_as_json_without_the_database_url(
    server_backend: ServerStore, tmp_path: Path
) -> None:
    from sqlalchemy.engine import make_url

    with served_registry(
        tmp_path / "home", server_backend.database_url, ("--anonymous-read",),
        server_backend.blob_url, server_backend.backend,
    ) as served:  # fmt: skip
        assert httpx2.get(f"{served.url}/healthz").status_code == 200
        assert served.server.stop() == 0
        log = served.server.access_log()
    events = [json.loads(line) for line in log.splitlines()]  # every line is JSON
    assert all(next(iter(e)) == "time" for e in events)
    start = events[0]
    assert start["message"] == f"serving on {served.url}" and start["listen"] == served.url
    catalog, blobs = server_backend.backend.split("+")
    assert start["catalog"] == {"sqlite": "sqlite", "postgres": "postgresql"}[catalog]
    assert start["blobs"] == blobs and start["anonymous_read"] is True
    assert start["home"] == str(served.home)
    assert any("--ui-secret-file" in e["message"] for e in events if "message" in e)
    url = make_url(server_backend.database_url)
    assert server_backend.database_url not in log
    if url.password:
        assert url.password not in log


def test_an_error_and_its_traceback_are_one_json_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from support.server import ROOT

    script = (
        "import logging\n"
        "from registry.server.logs import configure_logging\n"
        "configure_logging()\n"
        "try:\n"
        "    raise RuntimeError('boom')\n"
        "except RuntimeError as exc:\n"
        "    logging.getLogger('registry.server').error('unexpected error', exc_info=exc)\n"
        "logging.getLogger('uvicorn.error').error('Exception in ASGI application')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    first, second = (json.loads(line) for line in lines)
    assert (first["level"], first["logger"], first["message"]) == (
        "error", "registry.server", "unexpected error"
    )  # fmt: skip
    assert first["error"] == "RuntimeError" and "RuntimeError: boom" in first["traceback"]
    assert second["logger"] == "uvicorn.error"


def test_openapi_lists_every_route_the_server_answers(tmp_path: Path) -> None:
    from starlette.routing import Route

    from registry.server.app import create_app

    with Registry.open(tmp_path / "home", create=True) as local:
        app = create_app(local)
        answered = {
            (method.lower(), route.path.replace(":str}", "}"))
            for route in app.app.routes  # type: ignore[attr-defined]
            if isinstance(route, Route) and not route.path.startswith("/ui")
            for method in route.methods or ()
            if method != "HEAD"
        }
    with running_server(tmp_path / "home") as server:
        document = httpx2.get(f"{server.url}{API}/openapi.json").json()
        token = "Bearer adp_" + "x" * 43
        refused = httpx2.get(f"{server.url}{API}/versions", headers={"Authorization": token})
        unknown = httpx2.get(f"{server.url}{API}/nothing-here")
    listed = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert listed == answered
    assert document["paths"]["/readyz"]["get"]["security"] == []
    assert document["paths"][f"{API}/tokens"]["post"]["x-token-without-namespace"] is True
    error = document["components"]["responses"]["Error"]["content"]["application/json"]
    codes = error["schema"]["properties"]["error"]["properties"]["code"]["enum"]
    documented = ["invalid_name", "invalid_argument", "not_found", "conflict", "gate_unmet",
                  "validation_error", "integrity_error", "signature_error", "unauthenticated",
                  "forbidden", "too_large", "timeout", "bad_json", "not_ready"]  # fmt: skip
    assert set(documented) <= set(codes)
    assert refused.json()["error"]["code"] in codes and unknown.json()["error"]["code"] in codes


@pytest.mark.parametrize("namespace", ["Team A", "team/a", "a..b", "", "-team"])
def test_a_token_for_a_namespace_no_name_can_be_in_is_refused(
    served: ServedRegistry, namespace: str
) -> None:
    response = httpx2.post(
        f"{served.url}{API}/tokens",
        json={"name": "ns-token", "role": "reader", "namespace": namespace},
        headers={"Authorization": f"Bearer {served.tokens['admin']}"},
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "[a-z0-9][a-z0-9._-]*" in message and "'..'" in message
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert "ns-token" not in [t.name for t in local.tokens()]


@pytest.fixture
def postgres_database() -> Iterator[str]:
    from conftest import _postgres_database

    yield from _postgres_database()


def test_readyz_follows_the_catalog_and_errors_do_not_name_it(
    tmp_path: Path, postgres_database: str
) -> None:
    from sqlalchemy.engine import make_url
    from support.tcp_gate import TcpGate

    url = make_url(postgres_database)
    gate = TcpGate((url.host or "127.0.0.1", url.port or 5432))
    through_gate = url.set(host="127.0.0.1", port=gate.port).render_as_string(hide_password=False)
    home = tmp_path / "home"
    with Registry.open(home, create=True, database_url=through_gate) as local:
        token = local.create_token("r", "reader").secret
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with running_server(home, env={"ADAPTERS_DATABASE_URL": through_gate}) as server:
            assert httpx2.get(f"{server.url}/readyz").status_code == 200
            gate.shut()
            response = httpx2.get(f"{server.url}/readyz")
            assert response.status_code == 503
            assert response.json()["error"]["message"] == "the catalog cannot be reached"
            for headers in (auth, {"Authorization": "Bearer adp_unknown"}):
                refused = httpx2.get(f"{server.url}{API}/versions", headers=headers)
                assert refused.status_code == 503
                error = refused.json()["error"]
                assert error["code"] == "catalog_unavailable"
                assert str(gate.port) not in error["message"]
                assert url.database not in error["message"]
            gate.open()
            assert httpx2.get(f"{server.url}/readyz").json() == {"status": "ready"}
            assert httpx2.get(f"{server.url}{API}/versions", headers=auth).status_code == 200
            log = server.access_log()
    finally:
        gate.close()
    assert "readiness: the catalog cannot be reached" in log
    assert f"catalog_unavailable: catalog database {url.drivername}" in log  # for the operator


def test_a_blob_download_answers_if_none_match(served: ServedRegistry, tmp_path: Path) -> None:
    reg = Registry.open(served.url, token=served.tokens["admin"])
    version = reg.push(write_adapter(tmp_path / "cond-blob", seed=14)).version
    sha256 = version.files[0].sha256
    url = f"{served.url}{API}/blobs/{sha256}"
    auth = {"Authorization": f"Bearer {served.tokens['reader']}"}
    first = httpx2.get(url, params={"ref": version.ref}, headers=auth)
    assert first.status_code == 200 and first.headers["etag"] == f'"{sha256}"'
    again = httpx2.get(url, params={"ref": version.ref},
                       headers={**auth, "If-None-Match": f'W/"{sha256}"'})  # fmt: skip
    assert again.status_code == 304 and again.content == b""
    other = httpx2.get(url, params={"ref": version.ref}, headers={**auth, "If-None-Match": '"x"'})
    assert other.status_code == 200 and other.content == first.content
    reg.close()


def test_readyz_follows_the_object_store(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import urlsplit

    from conftest import use_s3
    from support.tcp_gate import TcpGate

    s3 = request.getfixturevalue("s3_server")
    use_s3(s3, monkeypatch)
    endpoint = urlsplit(s3.endpoint)
    gate = TcpGate((endpoint.hostname or "127.0.0.1", endpoint.port or 80))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{gate.port}")
    home = tmp_path / "home"
    Registry.open(home, create=True).close()
    try:
        with running_server(home) as server:
            assert httpx2.get(f"{server.url}/readyz").status_code == 200
            gate.shut()
            started = time.monotonic()
            response = httpx2.get(f"{server.url}/readyz", timeout=60)
            took = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.json()["error"]["message"] == "the blob store cannot be reached"
            gate.open()
            assert httpx2.get(f"{server.url}/readyz").json() == {"status": "ready"}
            log = server.access_log()
    finally:
        gate.close()
    assert took < 15, took
    assert s3.env["AWS_SECRET_ACCESS_KEY"] not in log
