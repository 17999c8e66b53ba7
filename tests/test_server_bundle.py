"""``POST /push/bundle``: a small push in one request, every file checked by its sha256
before the library's push runs; bad bundles are refused with nothing stored."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry, bundle_parts

from registry import Registry
from registry.remote import upload as remote_upload

API = "/api/v1"


def _bundle(directory: Path, name: str, *, tamper: bytes | None = None) -> tuple[bytes, int]:
    header, payload = bundle_parts(directory, name)
    if tamper is not None:
        payload = tamper + payload[len(tamper) :]
    return header + payload, len(header)


def _post(served: ServedRegistry, content: bytes, header_bytes: int | None) -> httpx2.Response:
    params = {} if header_bytes is None else {"header_bytes": header_bytes}
    return httpx2.post(f"{served.url}{API}/push/bundle", content=content, params=params,
                       headers={"Authorization": f"Bearer {served.tokens['writer']}"})  # fmt: skip


def test_a_small_push_is_one_request(served: ServedRegistry, tmp_path: Path) -> None:
    content, header_bytes = _bundle(write_adapter(tmp_path / "one-shot", seed=1), "one-shot")
    response = _post(served, content, header_bytes)
    assert response.status_code == 201, response.text
    version = response.json()["version"]
    assert (version["name"], version["version"]) == ("one-shot", "1")
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert local.verify("one-shot@1").ok


@pytest.mark.parametrize(
    "case", ["tampered", "short", "long", "no-header-length", "sizes", "header"]
)
def test_bad_bundles_store_nothing(served: ServedRegistry, tmp_path: Path, case: str) -> None:
    name = f"bad-{case}"
    content, header_bytes = _bundle(write_adapter(tmp_path / name, seed=2), name,
                                    tamper=b"\x00\x01" if case == "tampered" else None)  # fmt: skip
    given: int | None = header_bytes
    if case == "short":
        content = content[:-10]
    elif case == "long":
        content += b"extra"
    elif case == "no-header-length":
        given = None
    elif case == "sizes":
        header = json.loads(content[:header_bytes])
        header["sizes"] = {k: v + 1 for k, v in header["sizes"].items()}
        raw = json.dumps(header).encode()
        content, given = raw + content[header_bytes:], len(raw)
    elif case == "header":
        content, given = b"{not json" + content[header_bytes:], 9
    response = _post(served, content, given)
    # Sizes that do not match the files shift every boundary: the first file fails its hash.
    expected = {"tampered": 422, "sizes": 422}.get(case, 400)
    assert response.status_code == expected, response.text
    assert "\n" not in response.json()["error"]["message"]
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert local.list(name=name) == []
    leftovers = list((served.home / "tmp").glob("bundle-*"))
    assert leftovers == []


def test_the_client_bundles_small_pushes_and_uploads_large_ones_file_by_file(
    served: ServedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = Registry.open(served.url, token=served.tokens["writer"])
    small = reg.push(write_adapter(tmp_path / "sized", seed=3), name="sized")
    monkeypatch.setattr(remote_upload, "BUNDLE_BYTES", 0)  # everything counts as large
    large = reg.push(write_adapter(tmp_path / "sized-2", seed=4), name="sized")
    assert small.created and large.created, (small, large)
    assert (small.version.ref, large.version.ref) == ("sized@1", "sized@2")
    log = served.server.access_log()
    assert f'"{API}/push/bundle"' in log and f'"{API}/uploads/' in log
    assert [v.version for v in reg.list(name="sized")] == ["1", "2"]
    reg.close()
