"""Pulling a Hub repo into the registry as a version, checked file by file.

1. The revision is resolved to a commit once, by the request that lists the files and
   their hashes (online), or from the HF cache (``HF_HUB_OFFLINE=1``: pin a commit).
2. Only the adapter files are downloaded (into the HF cache, so an offline pull can use
   them later): those the registry manifest names, or for a plain PEFT repo
   ``adapter_config.json``, the weights and the card.
3. Each file is copied into a staging directory under the registry's ``tmp/`` while its
   sha256 and git blob id are computed, and compared with the Hub's LFS oid / blob id;
   with a registry manifest, also with the manifest's sha256 and size, and the manifest
   with its digest.
4. Only then is the staging directory pushed through the normal push path, carrying the
   manifest's base, lineage, training data and evals, and refused unless the recorded
   digest is the manifest's. Any failure removes the staging directory: nothing is
   half-imported.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import ConflictError, HubError, InvalidNameError, NotFoundError
from registry.faults import fault_point
from registry.formats import CONFIG_NAME, WEIGHTS_NAMES
from registry.hub.card import read_card
from registry.hub.failures import hub_errors
from registry.hub.links import record_link
from registry.hub.remote import (
    RemoteListing,
    checked_copy,
    download,
    fetch_manifest,
    list_cached,
    list_online,
)
from registry.hub.remote_manifest import CARD_PATH, RemoteManifest
from registry.hub.results import HubPullResult
from registry.hub.settings import HubSettings, client_session
from registry.progress import NoProgress, Progress
from registry.store.actor import current_actor
from registry.store.push import PushRequest, push
from registry.store.refs import validate_name
from registry.store.tag_rules import broken_tag_rule

if TYPE_CHECKING:
    from registry.store.store import Store

_REVISION = re.compile(r"^[^\s@]+$")


def parse_target(text: str) -> tuple[str, str]:
    """``REPO_ID[@REVISION]`` -> (repo id, revision; "main" when not given)."""
    repo_id, at, revision = text.strip().partition("@")
    if not repo_id or (at and not _REVISION.match(revision)):
        raise InvalidNameError(f"invalid Hub reference {text!r}: expected REPO_ID[@REVISION]")
    return repo_id, revision or "main"


def pull_repo(
    store: Store,
    target: str,
    *,
    settings: HubSettings,
    name: str | None = None,
    base: str | None = None,
    progress: Progress | None = None,
    progress_bars: bool = False,
) -> HubPullResult:
    repo_id, revision = parse_target(target)
    if name is not None:
        validate_name(name)
    progress = progress or NoProgress()
    staging_root = store.tmp_dir
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="hub-pull-", dir=staging_root))
    try:
        cached_only = settings.offline
        with hub_errors(settings, "pull", repo_id, revision), client_session(settings):
            if cached_only:
                listing = list_cached(settings, repo_id, revision)
            else:
                listing = list_online(settings, repo_id, revision)
            remote = fetch_manifest(settings, listing, staging, cached_only=cached_only)
        wanted = remote.hub_paths if remote is not None else _plain_files(listing)
        where = f"{repo_id}@{listing.commit[:12]}"
        absent = sorted(set(wanted.values()) - set(listing.files))
        if absent:
            raise HubError(
                f"hub pull: {where}: the registry manifest names {', '.join(absent)}, which "
                "the repo does not have; nothing was imported"
            )
        adapter_dir = staging / "adapter"
        with (
            hub_errors(settings, "pull", repo_id, revision),
            client_session(settings, progress_bars=progress_bars),
        ):
            total = sum(listing.files[p].size or 0 for p in wanted.values())
            progress.start("downloading", total)
            try:
                folder = download(
                    settings,
                    repo_id,
                    listing.commit,
                    list(wanted.values()),
                    cached_only=cached_only,
                    sizes=_listed_sizes(listing, wanted.values()),
                    progress=progress,
                )
            finally:
                progress.finish()
            progress.start("checking", total)
            try:
                sha256 = {
                    path: checked_copy(
                        folder, listing.files[hub], adapter_dir / path, where, progress
                    )
                    for path, hub in sorted(wanted.items())
                }
            finally:
                progress.finish()
        if remote is not None:
            _check_against_manifest(remote, sha256, adapter_dir, where)
            _refuse_version_clash(store, name or remote.name, remote)
            tags, tags_left_out = _rule_abiding_tags(remote.tags)
            request = _request_from_manifest(remote, adapter_dir, name, tags)
            notes: tuple[str, ...] = ()
        else:
            request, notes = _request_from_card(repo_id, adapter_dir, name, base)
            tags_left_out = ()
        fault_point("hub.verified")
        pushed = push(store, request, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    stored = pushed.version
    record_link(
        store.catalog,
        name=stored.name,
        version=stored.version,
        digest=stored.digest,
        direction="pull",
        endpoint=settings.public_endpoint,
        repo_id=listing.repo_id,
        revision=revision,
        commit=listing.commit,
        tag=None,
        actor=current_actor(),
        details={"created": pushed.created, "with_manifest": remote is not None},
    )
    return HubPullResult(
        repo_id=listing.repo_id,
        revision=revision,
        commit=listing.commit,
        endpoint=settings.public_endpoint,
        with_manifest=remote is not None,
        push=pushed,
        notes=notes,
        tags_left_out=tags_left_out,
    )


def _rule_abiding_tags(
    tags: Mapping[str, str],
) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """The tags that keep the tag rules, and (key, the rule broken) for each other one.

    A version pushed by an older release, or whose manifest was edited on the Hub, may carry
    tags that the rules now refuse; tags are annotations outside the version's digest, so
    the version is imported without them rather than refused."""
    kept: dict[str, str] = {}
    left_out: list[tuple[str, str]] = []
    for key, value in tags.items():
        rule = broken_tag_rule(key, value)
        if rule is None:
            kept[key] = value
        else:
            left_out.append((key, rule))
    return kept, tuple(left_out)


def _listed_sizes(listing: RemoteListing, paths: Iterable[str]) -> dict[str, int] | None:
    """Each file's size as the Hub lists it (None when one is unknown: then the listing
    cannot bound the downloads, and the client's own size check at the end is all)."""
    sizes = {path: listing.files[path].size for path in paths}
    if any(size is None for size in sizes.values()):
        return None
    return {path: size for path, size in sizes.items() if size is not None}


def _plain_files(listing: RemoteListing) -> dict[str, str]:
    """The adapter files of a repo without a registry manifest (path -> path)."""
    where = f"{listing.repo_id}@{listing.commit[:12]}"
    if CONFIG_NAME not in listing.files:
        raise HubError(
            f"hub pull: {where} has no {CONFIG_NAME} at its top level; not a PEFT adapter repo"
        )
    wanted = [CONFIG_NAME]
    for safe, pickled in WEIGHTS_NAMES.values():
        if safe in listing.files:
            wanted.append(safe)
            break
        if pickled in listing.files:
            raise HubError(
                f"hub pull: {where} has only pickle weights ({pickled}), which can run code "
                "when loaded; convert them to safetensors first"
            )
    else:
        raise HubError(f"hub pull: {where} has {CONFIG_NAME} but no adapter weights")
    if CARD_PATH in listing.files:
        wanted.append(CARD_PATH)
    return {path: path for path in wanted}


def _check_against_manifest(
    remote: RemoteManifest, sha256: dict[str, str], adapter_dir: Path, where: str
) -> None:
    problems = []
    for entry in remote.manifest.files:
        size = (adapter_dir / entry.path).stat().st_size
        if sha256.get(entry.path) != entry.sha256 or size != entry.size:
            problems.append(f"{entry.path} does not match the registry manifest's sha256/size")
    if problems:
        raise HubError(f"hub pull: {where}: " + "; ".join(problems) + "; nothing was imported")


def _refuse_version_clash(store: Store, name: str, remote: RemoteManifest) -> None:
    """Refuse before any blob is written when NAME@VERSION here holds other content."""
    try:
        here = store.resolve(f"{name}@{remote.version}")
    except NotFoundError:
        return
    if here.digest != remote.digest:
        raise ConflictError(
            f"hub pull: {here.ref} already exists here with other content "
            f"({here.digest[:19]}..., the Hub has {remote.digest[:19]}...); pull it under "
            "another name with --name"
        )


def _request_from_manifest(
    remote: RemoteManifest, adapter_dir: Path, name: str | None, tags: dict[str, str]
) -> PushRequest:
    manifest = remote.manifest
    return PushRequest(
        directory=adapter_dir,
        name=name or remote.name,
        version=remote.version,
        tags=tags,
        requires=dict(manifest.requires),
        lineage=manifest.lineage,
        exact_base=manifest.base_model,
        known_data=remote.training_data,
        eval_records=tuple(e.record() for e in remote.evals),
        expect_digest=remote.digest,
    )


def _request_from_card(
    repo_id: str, adapter_dir: Path, name: str | None, base: str | None
) -> tuple[PushRequest, tuple[str, ...]]:
    facts = read_card(adapter_dir / CARD_PATH) if (adapter_dir / CARD_PATH).is_file() else None
    if name is None:
        try:
            name = validate_name(repo_id.lower())
        except InvalidNameError:
            raise InvalidNameError(
                f"{repo_id!r} does not make a valid adapter name; pass --name"
            ) from None
    # adapter_config.json names the base when it can; the card's base_model otherwise.
    card_base = facts.base_model if facts is not None else None
    request = PushRequest(
        directory=adapter_dir,
        name=name,
        base=base or (card_base if not _config_names_base(adapter_dir) else None),
        eval_records=facts.evals if facts is not None else (),
    )
    return request, facts.skipped if facts is not None else ()


def _config_names_base(adapter_dir: Path) -> bool:
    import json

    try:
        config = json.loads((adapter_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # the push that follows reports what is wrong with the config
    value = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return isinstance(value, str) and bool(value)
