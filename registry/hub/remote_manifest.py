"""``registry-manifest.json``: the machine-readable record a push puts next to the PEFT files.

It holds the version's canonical manifest and digest (what the adapter *is*: method,
config, files with sha256, base model, training data, lineage) and its annotations (evals,
tags, training-data notes), plus where each of its files lives in the Hub repo. A pull
reads it back, checks the manifest against the digest and every file against the
manifest, and records the same version.

Files keep their paths, except the version's own model card: README.md on the Hub is the
card a push generates, so the version's card is stored byte for byte at
``registry/README.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from registry.errors import HubError, IntegrityError
from registry.release import __version__
from registry.store.manifest import Manifest
from registry.store.results import AdapterVersion, TrainingDataInfo, iso_utc
from registry.store.scores import NewScore

MANIFEST_PATH = "registry-manifest.json"
CARD_PATH = "README.md"
CARD_COPY_PATH = "registry/README.md"
FORMAT = "adapter-registry/hub-manifest-1"
RESERVED = frozenset({MANIFEST_PATH, CARD_PATH, ".gitattributes"})


@dataclass(frozen=True)
class RemoteEval:
    metric: str
    value: float
    dataset: str
    split: str
    notes: str
    recorded_at: str = ""
    actor: str = ""

    def record(self) -> NewScore:
        return NewScore(self.metric, self.value, self.dataset, self.split, self.notes)


@dataclass(frozen=True)
class RemoteManifest:
    name: str
    version: str
    digest: str
    manifest: Manifest
    hub_paths: dict[str, str]  # path in the version -> path in the Hub repo
    evals: tuple[RemoteEval, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    training_data: tuple[TrainingDataInfo, ...] = ()
    tool_version: str = ""

    def to_bytes(self) -> bytes:
        document = {
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "manifest": self.manifest.to_dict(),
            "hub_paths": dict(sorted(self.hub_paths.items())),
            "evals": [vars(e).copy() for e in self.evals],
            "tags": dict(sorted(self.tags.items())),
            "training_data": [vars(t).copy() for t in self.training_data],
            "tool": {"name": "adapter-registry", "version": self.tool_version},
        }
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")


def hub_path(path: str) -> str:
    return CARD_COPY_PATH if path == CARD_PATH else path


def for_version(version: AdapterVersion) -> RemoteManifest:
    """The record a push uploads for ``version``; deterministic, so an unchanged version
    yields the same bytes and the Hub skips the commit."""
    paths = {entry.path: hub_path(entry.path) for entry in version.files}
    targets = list(paths.values())
    clash = sorted({p for p in targets if p in RESERVED or targets.count(p) > 1})
    if clash:
        raise HubError(
            f"{version.ref} has a file at {clash[0]!r}, a path the registry uses on the Hub"
        )
    return RemoteManifest(
        name=version.name,
        version=version.version,
        digest=version.digest,
        manifest=version.manifest,
        hub_paths=paths,
        evals=tuple(
            RemoteEval(
                s.metric, s.value, s.dataset, s.split, s.notes, iso_utc(s.recorded_at), s.actor
            )
            for s in version.evals
        ),
        tags=dict(version.tags),
        # Local paths stay local: only the last component of a data path is published.
        training_data=tuple(
            TrainingDataInfo(t.sha256, t.kind, PurePosixPath(t.source).name, t.files, t.size)
            for t in version.training_data
        ),
        tool_version=__version__,
    )


def parse(data: bytes, where: str) -> RemoteManifest:
    """Read and check a registry manifest; every problem found is reported at once."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HubError(f"{where}: {MANIFEST_PATH} is not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise HubError(
            f"{where}: {MANIFEST_PATH} has format {found!r}, this registry reads {FORMAT!r}"
        )
    try:
        manifest = Manifest.from_dict(document["manifest"])
        remote = RemoteManifest(
            name=str(document["name"]),
            version=str(document["version"]),
            digest=str(document["digest"]),
            manifest=manifest,
            hub_paths={str(k): str(v) for k, v in document["hub_paths"].items()},
            evals=tuple(
                RemoteEval(
                    metric=str(e["metric"]),
                    value=float(e["value"]),
                    dataset=str(e.get("dataset") or ""),
                    split=str(e.get("split") or ""),
                    notes=str(e.get("notes") or ""),
                    recorded_at=str(e.get("recorded_at") or ""),
                    actor=str(e.get("actor") or ""),
                )
                for e in document.get("evals") or []
            ),
            tags={str(k): str(v) for k, v in (document.get("tags") or {}).items()},
            training_data=tuple(
                TrainingDataInfo(
                    str(t["sha256"]),
                    str(t["kind"]),
                    str(t.get("source") or ""),
                    int(t.get("files") or 0),
                    int(t.get("size") or 0),
                )
                for t in document.get("training_data") or []
            ),
            tool_version=str((document.get("tool") or {}).get("version") or ""),
        )
    except (KeyError, TypeError, ValueError, AttributeError, IntegrityError) as exc:
        raise HubError(
            f"{where}: {MANIFEST_PATH} is malformed ({type(exc).__name__}: {exc})"
        ) from None
    _check(remote, where)
    return remote


def _check(remote: RemoteManifest, where: str) -> None:
    problems = []
    if remote.manifest.digest != remote.digest:
        problems.append(
            f"its manifest hashes to {remote.manifest.digest}, not the recorded {remote.digest}"
        )
    paths = {entry.path for entry in remote.manifest.files}
    if set(remote.hub_paths) != paths:
        problems.append("hub_paths does not name exactly the manifest's files")
    for path, target in remote.hub_paths.items():
        pure = PurePosixPath(target)
        if pure.is_absolute() or ".." in pure.parts or target in RESERVED:
            problems.append(f"{path} is placed at an unusable path {target!r}")
        local = PurePosixPath(path)
        # The manifest's own path names the file written locally on pull: it must stay inside.
        if not path or local.is_absolute() or ".." in local.parts or "\\" in path:
            problems.append(f"the file path {path!r} would leave the adapter directory")
    known = {(t.sha256, t.kind) for t in remote.manifest.training_data}
    if {(t.sha256, t.kind) for t in remote.training_data} - known:
        problems.append("training_data names digests the manifest does not")
    if problems:
        raise HubError(f"{where}: {MANIFEST_PATH} does not hold together: " + "; ".join(problems))
