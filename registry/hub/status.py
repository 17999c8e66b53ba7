"""Comparing a local version with the Hub repos it was pushed to, by digest, never by time.

For each repo branch (the ones recorded by earlier pushes and pulls of the name, or the
one asked for) the branch head's registry manifest and file hashes are read:

- ``in-sync``: the head holds this version (same digest, every file's hash matches);
- ``local-ahead``: the head holds an older version of this name that this registry has;
- ``remote-changed``: the head holds something this registry does not have, a newer
  version, or files that differ from what its manifest says;
- ``missing``: the repo, the branch or this adapter's files are not there.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from registry.errors import HubError, NotFoundError
from registry.formats.config_file import CONFIG_NAME
from registry.hub.failures import hub_errors
from registry.hub.files import RemoteFile, git_blob_id
from registry.hub.links import links_for_name
from registry.hub.remote import RemoteListing, download, fetch_manifest, list_online
from registry.hub.remote_manifest import RemoteManifest, hub_path
from registry.hub.results import HubStatus, HubStatusReport, SyncState
from registry.hub.settings import HubSettings, client_session
from registry.store.hashing import sha256_bytes
from registry.store.manifest import FileEntry
from registry.store.results import AdapterVersion

if TYPE_CHECKING:
    from registry.store.store import Store


def sync_status(
    store: Store,
    ref: str,
    *,
    settings: HubSettings,
    repo_id: str | None = None,
    branch: str | None = None,
) -> HubStatusReport:
    version = store.resolve(ref)
    if settings.offline:
        raise HubError("hub status: offline (HF_HUB_OFFLINE=1); the Hub must be reachable")
    targets = (
        [(repo_id, branch or "main")] if repo_id else _recorded_targets(store, version, settings)
    )
    if not targets:
        never = HubStatus(
            version.ref,
            version.digest,
            "",
            branch or "main",
            "missing",
            f"no push or pull of {version.name} recorded for {settings.public_endpoint}; "
            "pass --repo REPO_ID to compare with a repo",
        )
        return HubStatusReport(version.ref, version.digest, settings.public_endpoint, (never,))
    staging_root = store.tmp_dir
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="hub-status-", dir=staging_root))
    try:
        repos = tuple(
            _compare(store, version, settings, repo, branch_name, staging / str(index))
            for index, (repo, branch_name) in enumerate(targets)
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return HubStatusReport(version.ref, version.digest, settings.public_endpoint, repos)


def _recorded_targets(
    store: Store, version: AdapterVersion, settings: HubSettings
) -> list[tuple[str, str]]:
    targets: list[tuple[str, str]] = []
    for link in links_for_name(store.catalog, version.name):
        if link.endpoint != settings.public_endpoint:
            continue
        # A push names its branch; a pull may name a tag or commit: compare with main then.
        target = (link.repo_id, link.revision if link.direction == "push" else "main")
        if target not in targets:
            targets.append(target)
    return targets


@dataclass(frozen=True)
class _Target:
    version: AdapterVersion
    repo_id: str
    branch: str

    def status(
        self,
        state: SyncState,
        detail: str,
        commit: str | None = None,
        digest: str | None = None,
        remote_ref: str | None = None,
    ) -> HubStatus:
        v = self.version
        return HubStatus(
            v.ref, v.digest, self.repo_id, self.branch, state, detail, commit, digest, remote_ref
        )


def _compare(
    store: Store,
    version: AdapterVersion,
    settings: HubSettings,
    repo_id: str,
    branch: str,
    staging: Path,
) -> HubStatus:
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    target = _Target(version, repo_id, branch)
    at = f"{repo_id}@{branch}"
    with hub_errors(settings, "status", repo_id, branch), client_session(settings):
        try:
            listing = list_online(settings, repo_id, branch)
        except RepositoryNotFoundError:
            return target.status(
                "missing", f"{repo_id} does not exist on {settings.public_endpoint}"
            )
        except RevisionNotFoundError:
            return target.status("missing", f"{repo_id} has no branch {branch}")
        try:
            remote = fetch_manifest(settings, listing, staging)
        except HubError as exc:
            detail = f"its registry manifest is unusable: {exc}"
            return target.status("remote-changed", detail, listing.commit)
    commit = listing.commit
    if remote is None:
        # A repo made without the registry (or pulled from one): files sit at their paths.
        plain = {entry.path: entry.path for entry in version.files}
        if not any(path in listing.files for path in plain.values()):
            return target.status("missing", f"{at} holds none of {version.ref}'s files", commit)
        differing = _differing_files(store, version, listing, plain)
        if CONFIG_NAME in differing and _same_config(settings, listing, version):
            differing.remove(CONFIG_NAME)  # the same config, serialised differently
        if differing:
            return target.status("remote-changed", _files_text(differing), commit)
        return target.status("in-sync", "every file matches (no registry manifest there)", commit)
    if remote.digest == version.digest:
        differing = _differing_files(store, version, listing, remote.hub_paths)
        if differing:
            detail = "same digest, but " + _files_text(differing)
            return target.status("remote-changed", detail, commit, remote.digest)
        return target.status("in-sync", f"{at} holds {version.ref}", commit, remote.digest)
    known = _local_version(store, version.name, remote)
    if known is None:
        detail = (
            f"{at} holds {remote.name}@{remote.version} ({remote.digest[:19]}...), which this "
            "registry does not have; `adapters hub pull` it to compare"
        )
        return target.status("remote-changed", detail, commit, remote.digest)
    if Version(known.version) < Version(version.version):
        detail = f"{at} holds the older {known.ref}; push {version.ref} to update it"
        return target.status("local-ahead", detail, commit, remote.digest, known.ref)
    detail = f"{at} holds {known.ref}, not {version.ref}"
    return target.status("remote-changed", detail, commit, remote.digest, known.ref)


def _local_version(store: Store, name: str, remote: RemoteManifest) -> AdapterVersion | None:
    try:
        return store.resolve(f"{name}@{remote.digest}")
    except NotFoundError:
        return None


def _differing_files(
    store: Store, version: AdapterVersion, listing: RemoteListing, paths: dict[str, str]
) -> list[str]:
    """The Hub paths (``paths`` maps the version's paths to them) whose hash differs."""
    found = []
    for entry in version.files:
        where = paths.get(entry.path, hub_path(entry.path))
        if not _same(store, entry, listing.files.get(where)):
            found.append(where)
    return found


def _same_config(settings: HubSettings, listing: RemoteListing, version: AdapterVersion) -> bool:
    """Whether the repo's adapter_config.json, normalised as a push normalises it (sorted
    keys, set-like lists sorted), is the version's. Tools other than the registry write
    the same config with other bytes (PEFT writes target_modules in set order)."""
    from registry.formats.config_file import (
        canonical_order,
        config_bytes,
        detect_format,
        normalise_peft_config,
        parse_config,
    )

    entry = next(e for e in version.files if e.path == CONFIG_NAME)
    with hub_errors(settings, "status", listing.repo_id, listing.commit), client_session(settings):
        folder = download(
            settings, listing.repo_id, listing.commit, [CONFIG_NAME], cached_only=False
        )
    document, problems = parse_config((folder / CONFIG_NAME).read_bytes())
    if document is None or problems:
        return False
    kind = detect_format(document)
    normal = normalise_peft_config(document) if kind == "peft" else canonical_order(document)
    return sha256_bytes(config_bytes(normal)) == entry.sha256


def _same(store: Store, entry: FileEntry, remote: RemoteFile | None) -> bool:
    if remote is None:
        return False
    if remote.lfs_sha256 is not None:
        return remote.lfs_sha256 == entry.sha256
    if remote.blob_id is None:
        return False
    try:
        data = store.blobs.path(entry.sha256).read_bytes()
    except OSError:
        return False
    return git_blob_id(data) == remote.blob_id


def _files_text(paths: list[str]) -> str:
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return f"files differ on the Hub: {shown}"
