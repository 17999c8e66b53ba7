"""Pushing a version to a Hugging Face Hub repo: one atomic commit, then a tag.

The commit is made with ``create_commit(..., parent_commit=<head read first>)``: if the
branch moves in between (another push), the Hub answers 412 and nothing is committed.
It holds the version's files (exported from the blob store, checked while copying), a
generated model card and ``registry-manifest.json``; the client skips files whose oid
the branch already has, so re-pushing an unchanged version makes no commit. Files an
earlier registry push put there and this version lacks are deleted in the same commit;
files the registry did not put there are left alone.

The tag ``v<version>`` then marks the commit. A tag that already marks a commit of the
*same* digest (an earlier push, before a card change) is moved; a tag that marks another
adapter is refused before anything is committed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import HubError
from registry.hub.card import build_card
from registry.hub.failures import LOGIN_HINT, hub_errors
from registry.hub.links import links_for_version, record_link
from registry.hub.remote import RemoteListing, fetch_manifest, list_online
from registry.hub.remote_manifest import CARD_PATH, MANIFEST_PATH, for_version
from registry.hub.results import HubPushResult
from registry.hub.settings import HubSettings, client_session, xet_supported
from registry.progress import Progress
from registry.release import __version__
from registry.store.actor import current_actor
from registry.store.export import export_version
from registry.store.results import AdapterVersion

if TYPE_CHECKING:
    from huggingface_hub import CommitOperation

    from registry.store.store import Store


def tag_name(version: str) -> str:
    """``v<version>``, kept within git's ref-name rules (PEP 440 versions already are)."""
    name = re.sub(r"[^A-Za-z0-9._+!-]", "-", "v" + version)
    name = re.sub(r"\.{2,}", ".", name).rstrip(".")
    return name[: -len(".lock")] + "-lock" if name.endswith(".lock") else name


def push_version(
    store: Store,
    ref: str,
    repo_id: str,
    *,
    settings: HubSettings,
    private: bool = False,
    branch: str | None = None,
    progress: Progress | None = None,
    progress_bars: bool = False,
) -> HubPushResult:
    version = store.resolve(ref)
    branch = branch or "main"
    tag = tag_name(version.version)
    if settings.offline:
        raise HubError("hub push: offline (HF_HUB_OFFLINE=1); unset it to push")
    if settings.token is None:
        raise HubError(f"hub push: no Hugging Face token; {LOGIN_HINT}")
    api = settings.api()
    with hub_errors(settings, "push", repo_id, branch), client_session(settings):
        api.whoami()  # a bad token fails here, with a clear message, before any work
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        head = list_online(settings, repo_id, branch)
        tags = {t.name: t.target_commit for t in api.list_repo_refs(repo_id).tags}

    staging_root = store.tmp_dir
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="hub-push-", dir=staging_root))
    try:
        with hub_errors(settings, "push", repo_id, branch), client_session(settings):
            if tag in tags:
                _refuse_foreign_tag(settings, repo_id, tag, tags[tag], version, staging)
            previous = _registry_paths(settings, head, staging)
        operations, files = _operations(
            version, repo_id, tag, head, previous, staging, store, progress
        )
        xet = xet_supported(settings, repo_id, branch)
        with (
            hub_errors(settings, "push", repo_id, branch),
            client_session(settings, xet=xet, progress_bars=progress_bars),
        ):
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=f"{version.ref} ({version.digest[:19]})",
                commit_description=(
                    f"{version.method} adapter {version.ref}, digest {version.digest}; "
                    f"pushed by adapter-registry {__version__}"
                ),
                revision=branch,
                parent_commit=head.commit,
            )
            commit = info.oid
            moved = tags.get(tag) not in (None, commit)
            if moved:
                api.delete_tag(repo_id, tag=tag)
            if tags.get(tag) != commit:
                api.create_tag(repo_id, tag=tag, revision=commit, tag_message=version.ref)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    result = HubPushResult(
        ref=version.ref,
        digest=version.digest,
        endpoint=settings.public_endpoint,
        repo_id=repo_id,
        branch=branch,
        commit=commit,
        tag=tag,
        committed=commit != head.commit,
        tag_moved=moved,
        files=files,
    )
    _record(store, version, result)
    return result


def _operations(
    version: AdapterVersion,
    repo_id: str,
    tag: str,
    head: RemoteListing,
    previous: set[str],
    staging: Path,
    store: Store,
    progress: Progress | None,
) -> tuple[list[CommitOperation], tuple[str, ...]]:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    # Exporting re-hashes every blob while copying: corrupt local bytes are never pushed.
    exported = export_version(version, store.blobs, staging / "files", progress=progress)
    remote = for_version(version)
    operations: list[CommitOperation] = [
        CommitOperationAdd(remote.hub_paths[path], str(exported.directory / path))
        for path in sorted(remote.hub_paths)
    ]
    operations.append(CommitOperationAdd(CARD_PATH, build_card(version, repo_id, tag).encode()))
    operations.append(CommitOperationAdd(MANIFEST_PATH, remote.to_bytes()))
    kept = {*remote.hub_paths.values(), CARD_PATH, MANIFEST_PATH}
    for stale in sorted((previous - kept) & set(head.files)):
        operations.append(CommitOperationDelete(stale))
    return operations, tuple(sorted(kept))


def _registry_paths(settings: HubSettings, head: RemoteListing, staging: Path) -> set[str]:
    """The files an earlier registry push put on this branch (its manifest says which)."""
    try:
        earlier = fetch_manifest(settings, head, staging / "previous")
    except HubError:
        return set()  # an unreadable record: delete nothing rather than guess
    return set(earlier.hub_paths.values()) if earlier is not None else set()


def _refuse_foreign_tag(
    settings: HubSettings,
    repo_id: str,
    tag: str,
    commit: str,
    version: AdapterVersion,
    staging: Path,
) -> None:
    tagged = list_online(settings, repo_id, commit)
    try:
        there = fetch_manifest(settings, tagged, staging / "tagged")
    except HubError:
        there = None
    if there is None or there.digest != version.digest:
        what = f"{there.name}@{there.version} ({there.digest[:19]}...)" if there else "other files"
        raise HubError(
            f"hub push: tag {tag} on {repo_id} already marks commit {commit[:12]} holding {what}, "
            f"not {version.ref} ({version.digest[:19]}...); nothing was pushed. Push to "
            "another repo, or delete that tag on the Hub first"
        )


def _record(store: Store, version: AdapterVersion, result: HubPushResult) -> None:
    """Record the push on the version, unless this very push is already recorded."""
    for link in links_for_version(store.catalog, version.name, version.version):
        if (
            link.direction == "push"
            and (link.endpoint, link.repo_id, link.revision)
            == (result.endpoint, result.repo_id, result.branch)
            and (link.commit, link.tag) == (result.commit, result.tag)
        ):
            return
    record_link(
        store.catalog,
        name=version.name,
        version=version.version,
        digest=version.digest,
        direction="push",
        endpoint=result.endpoint,
        repo_id=result.repo_id,
        revision=result.branch,
        commit=result.commit,
        tag=result.tag,
        actor=current_actor(),
        details={"committed": result.committed, "tag_moved": result.tag_moved},
    )
