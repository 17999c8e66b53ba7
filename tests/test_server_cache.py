"""What the server keeps between requests (accepted tokens, resolved references) is
dropped as soon as anyone commits to the catalog: a token revoked or an alias moved by
another process on the same catalog takes effect on the very next request."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
from support.handmade import write_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.security.tokens import create_token
from registry.server.memo import Memo
from registry.store.catalog.generation import CatalogGeneration

API = "/api/v1"


def _local(served: ServedRegistry) -> Registry:
    """The server's own catalog, opened by this process (as `adapters token revoke` on
    the server's machine would)."""
    return Registry.open(served.home, database_url=served.database_url)


def _resolve(served: ServedRegistry, secret: str, ref: str) -> httpx2.Response:
    return httpx2.get(f"{served.url}{API}/resolve", params={"ref": ref},
                      headers={"Authorization": f"Bearer {secret}"})  # fmt: skip


def test_a_token_revoked_by_another_process_is_refused_on_the_next_request(
    served: ServedRegistry, tmp_path: Path
) -> None:
    with _local(served) as local:
        local.push(write_adapter(tmp_path / "kept-lora", seed=1))
        secret = local.create_token("revoked-elsewhere", "reader").secret
    for _ in range(3):  # accepted, and kept by the server
        assert _resolve(served, secret, "kept-lora").status_code == 200
    with _local(served) as local:
        local.revoke_token("revoked-elsewhere")
    refused = _resolve(served, secret, "kept-lora")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"


def test_a_kept_token_that_expires_is_refused_without_any_write(
    served: ServedRegistry, tmp_path: Path
) -> None:
    with _local(served) as local:
        local.push(write_adapter(tmp_path / "expiring-lora", seed=2))
        soon = datetime.now(UTC) + timedelta(seconds=2)
        secret = create_token(local.catalog.engine, "expiring", "reader", expires_at=soon).secret
    assert _resolve(served, secret, "expiring-lora").status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    assert _resolve(served, secret, "expiring-lora").status_code == 401


def test_an_alias_moved_by_another_process_is_resolved_at_once(
    served: ServedRegistry, tmp_path: Path
) -> None:
    reader = served.tokens["reader"]
    with _local(served) as local:
        local.push(write_adapter(tmp_path / "moving-a", seed=3), name="moving")
        local.push(write_adapter(tmp_path / "moving-b", seed=4), name="moving")
        local.set_alias("moving@1", "prod")
    first = _resolve(served, reader, "moving@prod")
    assert first.json()["version"] == "1"
    assert _resolve(served, reader, "moving@prod").headers["etag"] == first.headers["etag"]
    with _local(served) as local:
        local.set_alias("moving@2", "prod")
    moved = _resolve(served, reader, "moving@prod")
    assert moved.json()["version"] == "2" and moved.headers["etag"] != first.headers["etag"]
    # A conditional request with the old ETag gets the new body, not a 304.
    again = httpx2.get(f"{served.url}{API}/resolve", params={"ref": "moving@prod"},
                       headers={"Authorization": f"Bearer {reader}",
                                "If-None-Match": first.headers["etag"]})  # fmt: skip
    assert again.status_code == 200 and again.json()["version"] == "2"


def test_the_generation_changes_with_every_commit_and_only_then(
    registry: Registry, tmp_path: Path
) -> None:
    generation = CatalogGeneration(registry.catalog.engine)
    try:
        registry.push(write_adapter(tmp_path / "gen-lora", seed=5))
        before = generation.current()
        assert before is not None
        registry.get("gen-lora")
        registry.list()
        if registry.catalog.engine.dialect.name == "sqlite":
            # (PostgreSQL's moves with writes anywhere in the cluster, e.g. autovacuum.)
            assert generation.current() == before
        registry.set_alias("gen-lora@1", "prod")
        after = generation.current()
        assert after != before
        registry.record_eval("gen-lora@1", {"accuracy": 0.5})
        assert generation.current() != after
    finally:
        generation.close()


def test_requests_that_miss_together_share_one_load() -> None:
    memo: Memo[int] = Memo()
    calls = 0

    async def make() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return 42

    async def burst() -> list[int]:
        return list(await asyncio.gather(*(memo.load("k", 1, make) for _ in range(20))))

    assert asyncio.run(burst()) == [42] * 20 and calls == 1
    assert memo.get("k", 1) == 42 and memo.get("k", 2) is None

    async def failing() -> int:
        raise ValueError("no such thing")

    async def failures() -> list[BaseException | int]:
        loads = (memo.load("x", 1, failing) for _ in range(3))
        return list(await asyncio.gather(*loads, return_exceptions=True))

    assert all(isinstance(r, ValueError) for r in asyncio.run(failures()))
    assert memo.get("x", 1) is None  # failures are not kept
    # Nothing is kept for a catalog without a generation.
    memo.put("n", None, 1)
    assert memo.get("n", None) is None


def test_a_kept_token_is_rechecked_after_a_write_without_a_worker_thread(
    sqlite_registry: Registry, tmp_path: Path
) -> None:
    """After an unrelated write the kept token's row is read on the event loop; a revoke
    is still seen by the very next identification."""
    import anyio.to_thread

    from registry.server.auth import Authenticator
    from registry.server.problems import HttpProblem

    registry = sqlite_registry
    engine = registry.catalog.engine
    registry.push(write_adapter(tmp_path / "recheck-lora", seed=6))
    secret = create_token(engine, "rechecked", "reader").secret
    generation = CatalogGeneration(engine)
    auth = Authenticator(engine, False, generation)
    header = f"Bearer {secret}"

    async def identify_with_no_thread_free() -> str:
        # Every worker thread is taken: a look-up needing one would wait until the timeout.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = 1
        await limiter.acquire()
        try:
            with anyio.fail_after(5):
                return (await auth.identify(header, generation.current())).name
        finally:
            limiter.release()

    async def first() -> str:
        return (await auth.identify(header, generation.current())).name

    try:
        assert asyncio.run(first()) == "rechecked"  # looked up in full, kept
        registry.record_eval("recheck-lora@1", {"accuracy": 0.5})  # an unrelated write
        assert asyncio.run(identify_with_no_thread_free()) == "rechecked"
        registry.revoke_token("rechecked")
        try:
            asyncio.run(first())
        except HttpProblem as exc:
            assert exc.status == 401
        else:
            raise AssertionError("a revoked token was accepted")
    finally:
        generation.close()
