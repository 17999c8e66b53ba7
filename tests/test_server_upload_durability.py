"""An upload is made durable (its fsync, its link into the blob store and that
directory's fsync) on a worker thread: an fsync waits for the disk, seconds for a large
file on a busy one, and the event loop must go on serving every other request."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

import httpx2
import pytest

from registry import Registry
from registry.server.app import create_app
from registry.server.settings import ServerSettings


def test_an_uploads_fsyncs_run_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry.open(tmp_path / "home", create=True)
    token = registry.create_token("writer", "writer").secret
    app = create_app(registry, ServerSettings())
    synced_on: list[int] = []
    fsync = os.fsync

    def recorded(descriptor: int) -> None:  # the real fsync, noting the thread it ran on
        synced_on.append(threading.get_ident())
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recorded)
    data = os.urandom(256 * 1024)
    sha256 = hashlib.sha256(data).hexdigest()

    async def upload() -> tuple[int, httpx2.Response]:
        transport = httpx2.ASGITransport(app=app)
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(transport=transport, base_url="http://t",
                                      headers=auth) as client:  # fmt: skip
            response = await client.put(f"/api/v1/uploads/{sha256}", content=data)
        return threading.get_ident(), response

    try:
        loop_thread, response = asyncio.run(upload())
    finally:
        registry.close()
    assert response.status_code == 201, response.text
    assert len(synced_on) >= 2  # the file, and the blob store's directory after the link
    assert loop_thread not in synced_on
    with Registry.open(tmp_path / "home") as reopened:
        assert reopened.blobs.path(sha256).read_bytes() == data
