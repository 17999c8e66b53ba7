"""What ``hub.push``, ``hub.pull`` and ``hub.status`` return (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from registry.store.results import PushResult

SyncState = Literal["in-sync", "local-ahead", "remote-changed", "missing"]


@dataclass(frozen=True)
class HubPushResult:
    ref: str
    digest: str
    endpoint: str
    repo_id: str
    branch: str
    commit: str
    tag: str
    committed: bool  # False: the branch already held exactly these files
    tag_moved: bool  # the tag pointed at an older commit of the same version
    files: tuple[str, ...]  # paths in the Hub repo that the commit holds for this version

    @property
    def url(self) -> str:
        return f"{self.endpoint}/{self.repo_id}/tree/{self.tag}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "endpoint": self.endpoint,
            "repo_id": self.repo_id,
            "branch": self.branch,
            "commit": self.commit,
            "tag": self.tag,
            "committed": self.committed,
            "tag_moved": self.tag_moved,
            "files": list(self.files),
            "url": self.url,
        }


@dataclass(frozen=True)
class HubPullResult:
    repo_id: str
    revision: str  # as asked for
    commit: str  # what it resolved to, once
    endpoint: str
    with_manifest: bool  # False: a plain PEFT repo, metadata from its config and card
    push: PushResult  # the version recorded (or found identical) in this registry
    notes: tuple[str, ...] = ()  # what was not imported, and why
    # (key, the rule it breaks) for each tag of the Hub's manifest left out of the import
    tags_left_out: tuple[tuple[str, str], ...] = ()

    @property
    def ref(self) -> str:
        return self.push.version.ref

    @property
    def digest(self) -> str:
        return self.push.version.digest

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "endpoint": self.endpoint,
            "with_manifest": self.with_manifest,
            "ref": self.ref,
            "digest": self.digest,
            "created": self.push.created,
            "notes": list(self.notes),
            "tags_left_out": [{"key": key, "reason": why} for key, why in self.tags_left_out],
            "version": self.push.version.to_dict(),
        }


@dataclass(frozen=True)
class HubStatus:
    """One Hub repo branch compared with a local version, by digest."""

    ref: str
    digest: str
    repo_id: str
    branch: str
    state: SyncState
    detail: str
    remote_commit: str | None = None
    remote_digest: str | None = None
    remote_ref: str | None = None  # the local version the remote digest belongs to

    @property
    def in_sync(self) -> bool:
        return self.state == "in-sync"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "repo_id": self.repo_id,
            "branch": self.branch,
            "state": self.state,
            "detail": self.detail,
            "remote_commit": self.remote_commit,
            "remote_digest": self.remote_digest,
            "remote_ref": self.remote_ref,
        }


@dataclass(frozen=True)
class HubStatusReport:
    ref: str
    digest: str
    endpoint: str
    repos: tuple[HubStatus, ...]

    @property
    def in_sync(self) -> bool:
        return bool(self.repos) and all(r.in_sync for r in self.repos)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "endpoint": self.endpoint,
            "in_sync": self.in_sync,
            "repos": [r.to_dict() for r in self.repos],
        }
