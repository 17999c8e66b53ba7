"""Reading a Hub repo at one commit: its file listing and its registry manifest.

A revision (branch, tag, commit) is resolved to a commit once, by the same request that
lists the files with their hashes; everything after that names the commit, so a branch
that moves in the meantime cannot mix two states of the repo.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from registry.bases.hub_cache import cached_snapshot
from registry.errors import FingerprintError, HubError
from registry.faults import fault_point
from registry.hub.download_progress import forwarding_bars
from registry.hub.files import RemoteFile, copy_hashed, evict_cached, mismatch
from registry.hub.limits import DownloadLimits, bounded_downloads
from registry.hub.remote_manifest import MANIFEST_PATH, RemoteManifest, parse
from registry.hub.settings import HubSettings
from registry.progress import Progress


@dataclass(frozen=True)
class RemoteListing:
    repo_id: str
    commit: str
    files: dict[str, RemoteFile]


def list_online(settings: HubSettings, repo_id: str, revision: str) -> RemoteListing:
    info = settings.api().model_info(repo_id, revision=revision, files_metadata=True)
    if not info.sha:
        raise HubError(f"{settings.public_endpoint} did not say which commit {revision} is")
    files = {
        sibling.rfilename: RemoteFile(
            sibling.rfilename,
            sibling.size,
            sibling.blob_id,
            sibling.lfs.sha256 if sibling.lfs is not None else None,
        )
        for sibling in info.siblings or []
    }
    return RemoteListing(info.id or repo_id, info.sha, files)


def list_cached(settings: HubSettings, repo_id: str, revision: str) -> RemoteListing:
    """The listing an earlier download left in the HF cache, without the network. It has
    git blob ids only (no LFS sha256), which still pin every file's bytes."""
    from huggingface_hub import get_cached_repo_tree

    try:
        commit = cached_snapshot(repo_id, revision, settings.cache_dir).commit
    except FingerprintError as exc:
        raise HubError(
            f"hub pull: offline (HF_HUB_OFFLINE=1) and {exc}; pull it once online, then pin "
            "its commit (REPO@<commit>)"
        ) from None
    tree = get_cached_repo_tree(repo_id, revision=commit, cache_dir=settings.cache_dir)
    files = {f.path: RemoteFile(f.path, f.size, f.blob_id) for f in tree}
    return RemoteListing(repo_id, commit, files)


def download(
    settings: HubSettings,
    repo_id: str,
    revision: str,
    paths: list[str],
    *,
    cached_only: bool,
    sizes: Mapping[str, int] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Fetch ``paths`` at ``revision`` into the HF cache; the snapshot folder (named by commit).

    With ``sizes`` (each path's listed size) the downloads run under ``limits``; with
    ``progress``, the bytes written are reported to it instead of the client's own bars."""
    from huggingface_hub import snapshot_download

    bars = forwarding_bars(progress) if progress is not None else None

    def fetch() -> str:
        return snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=sorted(paths),
            cache_dir=settings.cache_dir,
            endpoint=settings.endpoint,
            token=settings.token,
            local_files_only=cached_only,
            max_workers=4,
            tqdm_class=bars,
        )

    if cached_only or sizes is None:
        return Path(fetch())
    cache_repo = settings.cache_dir / ("models--" + repo_id.replace("/", "--"))
    where = f"{repo_id}@{revision[:12]}"
    with bounded_downloads(DownloadLimits.from_environment(), sizes, where, cache_repo):
        return Path(fetch())


def checked_copy(
    folder: Path,
    remote: RemoteFile,
    target: Path,
    where: str,
    progress: Progress | None = None,
) -> str:
    """Copy one downloaded file into staging; refuse it (and evict it from the cache) unless
    its bytes are what the Hub lists. Returns its sha256."""
    source = folder / remote.path
    if not source.is_file():
        raise HubError(f"{where}: {remote.path} was not downloaded")
    copied = copy_hashed(source, target, remote.path, progress)
    fault_point("hub.downloaded")
    problem = mismatch(copied, remote)
    if problem is not None:
        evict_cached(source)
        raise HubError(
            f"{where}: {remote.path} {problem}: the file on the Hub is not what its hash says "
            "(tampered or corrupted); nothing was imported"
        )
    return copied.sha256


def fetch_manifest(
    settings: HubSettings, listing: RemoteListing, staging: Path, *, cached_only: bool = False
) -> RemoteManifest | None:
    """The registry manifest at the listing's commit, checked against the listing, or None
    when the repo has none."""
    remote = listing.files.get(MANIFEST_PATH)
    if remote is None:
        return None
    where = f"{listing.repo_id}@{listing.commit[:12]}"
    folder = download(
        settings,
        listing.repo_id,
        listing.commit,
        [MANIFEST_PATH],
        cached_only=cached_only,
        sizes=None if remote.size is None else {MANIFEST_PATH: remote.size},
    )
    target = staging / MANIFEST_PATH
    checked_copy(folder, remote, target, where)
    return parse(target.read_bytes(), where)
