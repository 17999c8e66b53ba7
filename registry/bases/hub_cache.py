"""Base-model snapshots in the local Hugging Face cache, found offline, and fingerprinted.

The cache layout is huggingface_hub's: ``models--org--name/refs/<ref>`` holds a commit sha,
``models--org--name/snapshots/<sha>/`` the files. The network is never touched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from registry.bases.file_source import fingerprint_directory, fingerprint_files
from registry.bases.fingerprint import Fingerprint
from registry.errors import FingerprintError

_HEX = re.compile(r"[0-9a-f]+")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPO_ID = re.compile(r"(?:[\w.-]+/)?[\w.-]{1,96}", re.ASCII)


@dataclass(frozen=True)
class CachedSnapshot:
    """A model snapshot found in the local Hugging Face cache."""

    repo_id: str
    commit: str
    path: Path


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (not at import time):
    HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub,
    ~/.cache/huggingface/hub, as huggingface_hub does."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(os.path.expanduser(explicit)))
    home = os.environ.get("HF_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        home = os.path.join(cache, "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"


def cached_snapshot(
    repo_id: str, revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> CachedSnapshot:
    """Find ``repo_id`` at ``revision`` (commit sha or unique prefix of 7+ hex digits, branch,
    tag; None = "main") in the local cache. Never touches the network."""
    _check_repo_id(repo_id)
    root = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    repo_dir = root / ("models--" + repo_id.replace("/", "--"))
    if not repo_dir.is_dir():
        raise FingerprintError(f"{repo_id} is not in the Hugging Face cache at {root}")
    wanted = revision or "main"
    commit = _resolve_revision(repo_dir, wanted, repo_id)
    snapshot = repo_dir / "snapshots" / commit
    if not snapshot.is_dir():
        raise FingerprintError(
            f"{repo_id}@{wanted} points to commit {commit}, whose snapshot is not in the cache"
        )
    return CachedSnapshot(repo_id, commit, snapshot)


def fingerprint_hub_cache(
    repo_id: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    exhaustive: bool = False,
) -> Fingerprint:
    """Fingerprint a model snapshot from the local Hugging Face cache (see ``cached_snapshot``)."""
    snapshot = cached_snapshot(repo_id, revision, cache_dir)
    return fingerprint_directory(snapshot.path, exhaustive=exhaustive)


def _check_repo_id(repo_id: str) -> None:
    # The rules huggingface_hub's validate_repo_id applies; they also keep the id from
    # naming anything outside the cache directory.
    if (
        not _REPO_ID.fullmatch(repo_id)
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith(".git")
    ):
        raise FingerprintError(f"{repo_id!r} is not a Hugging Face repo id (like org/name)")


def _resolve_revision(repo_dir: Path, revision: str, repo_id: str) -> str:
    parts = revision.split("/")
    if "\\" in revision or any(part in ("", ".", "..") for part in parts):
        raise FingerprintError(f"{revision!r} is not a revision name")
    ref = repo_dir / "refs" / revision
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if not _COMMIT.fullmatch(commit):
            raise FingerprintError(f"{ref} does not hold a commit sha")
        return commit
    snapshots = repo_dir / "snapshots"
    commits = sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []
    if len(revision) >= 7 and _HEX.fullmatch(revision):
        matches = [c for c in commits if c.startswith(revision)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise FingerprintError(f"commit prefix {revision} of {repo_id} is ambiguous")
    refs_dir = repo_dir / "refs"
    found = refs_dir.rglob("*") if refs_dir.is_dir() else iter(())
    refs = sorted(p.relative_to(refs_dir).as_posix() for p in found if p.is_file())
    raise FingerprintError(
        f"revision {revision} of {repo_id} is not in the local cache "
        f"(cached refs: {', '.join(refs) or 'none'}; snapshots: "
        f"{', '.join(c[:12] for c in commits) or 'none'})"
    )


def fingerprint_path_or_hub(
    text: str, cache_dir: str | os.PathLike[str] | None = None, *, exhaustive: bool = False
) -> Fingerprint:
    """A directory or ``.safetensors`` file if ``text`` names an existing path, else a Hub id
    with an optional ``@revision`` looked up in the local cache."""
    path = Path(text).expanduser()
    if path.is_dir():
        return fingerprint_directory(path, exhaustive=exhaustive)
    if path.is_file():
        return fingerprint_files([path], exhaustive=exhaustive)
    if text.startswith((".", "/", "~")) or os.path.isabs(text):
        raise FingerprintError(f"{text}: no such file or directory")
    repo_id, _, revision = text.partition("@")
    return fingerprint_hub_cache(repo_id, revision or None, cache_dir, exhaustive=exhaustive)
