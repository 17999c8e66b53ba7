"""Fingerprints of safetensors weights on disk: a model directory (sharded or not) or files.

Only the headers and the sampled bytes are read, the samples through one read-only mmap per
file; no torch. Headers are checked by ``registry.formats.safetensors_header``, the one
safetensors header parser, with this module's wording of the problems.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from registry.bases.fingerprint import Fingerprint, TensorSample
from registry.bases.sampling import assemble_fingerprint, name_problem, sample_indices, sample_units
from registry.bases.tensor_digests import file_tensor_digests
from registry.errors import FingerprintError, FormatError, UnsafeFormatError
from registry.formats.model import TensorInfo
from registry.formats.safetensors_header import (
    MAX_HEADER_BYTES,
    HeaderWording,
    inspect_header_stream,
)
from registry.formats.text import join_problems

_INDEX = "model.safetensors.index.json"
_SINGLE = "model.safetensors"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class _Wording(HeaderWording):
    """The fingerprint's sentences for header problems: names quoted as Python strings, one
    sentence for each kind of wrong offsets or sizes."""

    def too_short(self, size: int) -> str:
        return f"{size} bytes is too short for a safetensors file"

    def length_over_limit(self, length: int, available: int) -> str:
        allowed = min(available, MAX_HEADER_BYTES)
        return f"header length {length} exceeds the {allowed} bytes allowed"

    def length_past_end(self, length: int, available: int) -> str:
        return self.length_over_limit(length, available)

    def not_utf8(self, exc: UnicodeDecodeError) -> str:
        return f"header is not valid UTF-8 JSON: {exc}"

    def duplicate_key(self, key: str) -> str:
        return f"header is not valid UTF-8 JSON: key {key!r} appears twice"

    def not_json(self, exc: ValueError | RecursionError) -> str:
        return f"header is not valid UTF-8 JSON: {exc}"

    def not_object(self, document: object) -> str:
        return "header is not a JSON object"

    def tensor(self, name: str) -> str:
        return f"tensor {name!r}"

    def offsets_backwards(self, label: str, offsets: list[int]) -> str:
        return f"{label}: data_offsets {offsets} fall outside the data section"

    def offsets_past_end(self, label: str, offsets: list[int], data_size: int) -> str:
        return self.offsets_backwards(label, offsets)

    def not_whole_bytes(self, label: str, info: TensorInfo, span: int) -> str:
        return f"{label}: {span} bytes cannot hold {info.dtype} {list(info.shape)}"

    def wrong_size(self, label: str, info: TensorInfo, span: int, needed: int) -> str:
        return self.not_whole_bytes(label, info, span)

    def overlap(self, first: str, second: str, begin: int, end: int) -> str:
        return f"tensors {first!r} and {second!r} overlap"


_WORDING = _Wording()


def fingerprint_directory(path: str | os.PathLike[str], *, exhaustive: bool = False) -> Fingerprint:
    """Fingerprint the safetensors weights in a model directory; ``exhaustive`` adds the
    full-content digest of every tensor (``tensor_digests``, cached per file).

    Uses ``model.safetensors.index.json`` when present (sharded), else ``model.safetensors``,
    else every top-level ``*.safetensors`` file. A directory holding only pickle weights is
    refused with ``UnsafeFormatError``: they are never unpickled.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise FingerprintError(f"{directory} is not a directory")
    files, weight_map = _weight_files(directory)
    return _fingerprint_files(files, weight_map, directory, exhaustive)


def fingerprint_files(
    paths: Iterable[str | os.PathLike[str]], *, exhaustive: bool = False
) -> Fingerprint:
    """Fingerprint the tensors of the given safetensors files taken together."""
    files = [Path(p) for p in paths]
    if not files:
        raise FingerprintError("no safetensors files given")
    return _fingerprint_files(files, None, None, exhaustive)


def _weight_files(directory: Path) -> tuple[list[Path], dict[str, str] | None]:
    index = directory / _INDEX
    if not index.is_file():
        others = sorted(directory.glob("*.safetensors.index.json"))
        if len(others) > 1:
            names = ", ".join(p.name for p in others)
            raise FingerprintError(f"{directory} holds several shard indexes ({names})")
        index = others[0] if others else index
    if index.is_file():
        weight_map = _read_index(index)
        shards = sorted(set(weight_map.values()))
        return [directory / shard for shard in shards], weight_map
    if (directory / _SINGLE).is_file():
        return [directory / _SINGLE], None
    found = sorted(p for p in directory.glob("*.safetensors") if p.is_file())
    if found:
        return found, None
    raise _no_safetensors(directory)


def _no_safetensors(directory: Path) -> FingerprintError | UnsafeFormatError:
    pickles = sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and (p.suffix in _PICKLE_SUFFIXES or p.name.endswith(".bin.index.json"))
    )
    if pickles:
        return UnsafeFormatError(
            f"{directory} has only pickle weights ({', '.join(pickles[:3])}); they are never "
            "unpickled because loading them can run code. Convert them to safetensors, e.g. "
            "load the model with transformers and save_pretrained() it, then fingerprint that"
        )
    return FingerprintError(f"{directory} holds no safetensors weights")


def _read_index(index: Path) -> dict[str, str]:
    try:
        document = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{index}: cannot read the shard index: {exc}") from exc
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise FormatError(f"{index}: no weight_map object mapping tensor names to shard files")
    problems = [
        f"{name!r} -> {shard!r} is not a shard file name in the same directory"
        for name, shard in weight_map.items()
        if not _is_local_file_name(shard)
    ]
    if problems:
        raise FormatError(f"{index}: " + join_problems(problems))
    return {str(name): str(shard) for name, shard in weight_map.items()}


def _is_local_file_name(value: object) -> bool:
    # Shards sit next to their index; anything with a path separator or ".." could escape it.
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and "/" not in value
        and "\\" not in value
        and "\0" not in value
    )


def _fingerprint_files(
    files: Sequence[Path],
    weight_map: Mapping[str, str] | None,
    directory: Path | None,
    exhaustive: bool,
) -> Fingerprint:
    samples: dict[str, TensorSample] = {}
    digests: dict[str, str] = {}
    where: dict[str, str] = {}
    problems: list[str] = []
    for file in files:
        if not file.is_file():
            problems.append(f"shard {file.name} listed in the index is missing")
            continue
        found, file_digests = _sample_file(file, exhaustive)
        digests.update(file_digests)
        for name, sample in found.items():
            if name in samples:
                problems.append(f"tensor {name} is in both {where[name]} and {file.name}")
            samples[name] = sample
            where[name] = file.name
    if weight_map is not None:
        present = {file.name for file in files if file.is_file()}
        # A missing shard is reported once above, not once per tensor it should hold.
        problems.extend(
            f"the index puts {name} in {shard}, which does not hold it"
            for name, shard in weight_map.items()
            if shard in present and where.get(name) != shard
        )
    if problems:
        raise FormatError(f"{directory or files[0]}: " + join_problems(problems))
    fingerprint = assemble_fingerprint(samples)
    return fingerprint.with_digests(digests) if exhaustive else fingerprint


def _sample_file(path: Path, exhaustive: bool) -> tuple[dict[str, TensorSample], dict[str, str]]:
    """Check the header, then read each tensor's sampled bytes through one read-only mmap
    (and, ``exhaustive``, hash each tensor's whole bytes through the same mmap)."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            report = inspect_header_stream(handle, size, _WORDING)
            # Names are checked here too, so that a bad one is refused as a bad file.
            names = (name_problem(name) for name in report.tensors)
            problems = report.problems + [p for p in names if p is not None]
            if problems:
                raise _bad_file(path, problems)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                samples = _read_samples(view, report.data_start, report.tensors.values())
                if not exhaustive:
                    return samples, {}
                infos = report.tensors.values()
                return samples, file_tensor_digests(path, view, report.data_start, infos)
    except OSError as exc:
        raise FingerprintError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _bad_file(path: Path, problems: Sequence[str]) -> FormatError:
    return FormatError(f"{path}: not a valid safetensors file: " + join_problems(problems))


def _read_samples(
    view: mmap.mmap, data_start: int, declared: Iterable[TensorInfo]
) -> dict[str, TensorSample]:
    plans = []
    for d in declared:
        count, unit = sample_units(d.dtype, d.shape)
        begin = data_start + d.offsets[0]
        plans.append((d, unit, [begin + i * unit for i in sample_indices(d.name, count)]))
    _prefetch(view, [(offset, unit) for _, unit, offsets in plans for offset in offsets])
    return {
        d.name: TensorSample(d.dtype, d.shape, b"".join(view[o : o + unit] for o in offsets))
        for d, unit, offsets in plans
    }


def _prefetch(view: mmap.mmap, spans: Sequence[tuple[int, int]]) -> None:
    """Tell the kernel up front which pages will be read.

    Faulting the pages in one by one costs a synchronous disk read each (about 13 s for a
    cold 7B checkpoint here); announced together, the reads overlap (about 0.3 s).
    """
    if not hasattr(mmap, "MADV_WILLNEED"):
        return
    page = mmap.PAGESIZE
    for offset, unit in sorted(set(spans)):
        start = offset - offset % page
        view.madvise(mmap.MADV_WILLNEED, start, offset + unit - start)
