"""Hostile input: each case is refused with one clear line and leaves nothing behind.

Every case starts from a valid hand-written adapter (tests/support/handmade.py), breaks one thing,
and pushes it through the CLI. It must exit 1 with a single ``error: ...`` line naming the
problem, and neither the catalog (versions, bases, audit events, blob leases) nor the blob
store (blobs, temp files, staging directories) may have changed. docs/reliability.md lists
the corpus.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlmodel import Session, select
from support.handmade import adapter_files, safetensors_bytes, write_adapter

from registry import Registry
from registry.cli import main
from registry.store.catalog.tables import BaseModelRow, BlobLeaseRow

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    """Break a valid adapter directory; push it with ``args``; expect ``message`` in the error."""

    build: Callable[[Path, Path], None]  # (adapter directory, scratch directory outside it)
    message: str
    args: tuple[str, ...] = ()


# -- building blocks --------------------------------------------------------------------------


def _config(d: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((d / CONFIG).read_text())
    return loaded


def _set(**changes: Any) -> Callable[[Path, Path], None]:
    def build(d: Path, _: Path) -> None:
        config = _config(d)
        config.update(changes)
        (d / CONFIG).write_text(json.dumps(config))

    return build


def _raw_config(data: bytes) -> Callable[[Path, Path], None]:
    def build(d: Path, _: Path) -> None:
        (d / CONFIG).write_bytes(data)

    return build


def _append_to_config(text: str) -> Callable[[Path, Path], None]:
    """Insert raw JSON text as the config's last member (for what json.dumps cannot write)."""

    def build(d: Path, _: Path) -> None:
        body = (d / CONFIG).read_text().rstrip()
        (d / CONFIG).write_text(body[:-1] + ", " + text + "}")

    return build


def _weights(data: bytes) -> Callable[[Path, Path], None]:
    def build(d: Path, _: Path) -> None:
        (d / WEIGHTS).write_bytes(data)

    return build


def _header(header: bytes | dict[str, Any], data: bytes, length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def _lying_length(delta: int) -> Callable[[Path, Path], None]:
    def build(d: Path, _: Path) -> None:
        raw = (d / WEIGHTS).read_bytes()
        (length,) = struct.unpack("<Q", raw[:8])
        (d / WEIGHTS).write_bytes(struct.pack("<Q", length + delta) + raw[8:])

    return build


def _tensor_values(value: float) -> Callable[[Path, Path], None]:
    def build(d: Path, _: Path) -> None:
        import numpy as np

        from registry.formats import read_safetensors_header

        tensors, _meta = read_safetensors_header(d / WEIGHTS)
        arrays = {name: np.full(info.shape, 0.01, dtype="<f4") for name, info in tensors.items()}
        first = sorted(arrays)[0]
        arrays[first][0, 0] = value
        (d / WEIGHTS).write_bytes(safetensors_bytes(arrays))

    return build


def _symlink_weights_outside(d: Path, scratch: Path) -> None:
    outside = scratch / "elsewhere.safetensors"
    outside.write_bytes((d / WEIGHTS).read_bytes())
    (d / WEIGHTS).unlink()
    (d / WEIGHTS).symlink_to(outside)


def _symlink_config_to_system_file(d: Path, _: Path) -> None:
    (d / CONFIG).unlink()
    (d / CONFIG).symlink_to("/etc/hostname" if Path("/etc/hostname").exists() else "/etc/hosts")


def _symlinked_directory_outside(d: Path, scratch: Path) -> None:
    (scratch / "secrets").mkdir()
    (scratch / "secrets" / "id_ed25519").write_text("not for the registry")
    (d / "extra").symlink_to(scratch / "secrets", target_is_directory=True)


def _relative_symlink_escape(d: Path, scratch: Path) -> None:
    (scratch / "card.md").write_text("# outside\n")
    (d / "README.md").unlink()
    (d / "README.md").symlink_to(Path("..") / scratch.name / "card.md")


def _pickle_only(d: Path, _: Path) -> None:
    (d / WEIGHTS).unlink()
    (d / "adapter_model.bin").write_bytes(pickle.dumps({"weight": [0.0] * 4}))


class _Payload:
    """Unpickling this runs ``exec`` of code that writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('executed')",))


def _malicious_pickle(d: Path, scratch: Path) -> None:
    (d / WEIGHTS).unlink()
    (d / "adapter_model.bin").write_bytes(
        pickle.dumps({"weight": _Payload(scratch / "marker")}, protocol=2)
    )


def _malicious_torch_file(d: Path, scratch: Path) -> None:
    import torch

    (d / WEIGHTS).unlink()
    torch.save({"weight": _Payload(scratch / "marker")}, d / "adapter_model.bin")


def _fifo(name: str) -> Callable[[Path, Path], None]:
    def build(d: Path, _: Path) -> None:
        (d / name).unlink()
        os.mkfifo(d / name)

    return build


def _emptied(name: str) -> Callable[[Path, Path], None]:
    def build(d: Path, _: Path) -> None:
        (d / name).write_bytes(b"")

    return build


def _nothing(d: Path, _: Path) -> None:
    pass


def _removed(name: str) -> Callable[[Path, Path], None]:
    def build(d: Path, _: Path) -> None:
        (d / name).unlink()

    return build


_F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
_BIG_CONFIG = b'{"peft_type": "LORA", "pad": "' + b"x" * (16 * MiB + 10) + b'"}'

# -- the corpus -------------------------------------------------------------------------------

CASES: dict[str, Case] = {
    # JSON configs
    "json-malformed": Case(
        _raw_config(b'{"peft_type": "LORA", "r": 4,,}'), "invalid JSON at line 1"
    ),
    "json-not-utf8": Case(_raw_config(b'{"peft_type": "\xff\xfe"}'), "not UTF-8"),
    "json-not-an-object": Case(_raw_config(b"[1, 2, 3]"), "expected an object"),
    "json-oversized": Case(_raw_config(_BIG_CONFIG), "more than 16777216 bytes"),
    "json-nested-100000-deep": Case(
        _append_to_config('"x": ' + "[" * 100_000 + "]" * 100_000), "nested more than 64 levels"
    ),
    "json-nested-800-deep": Case(
        _append_to_config('"x": ' + "[" * 800 + "]" * 800), "nested more than 64 levels"
    ),
    "json-duplicate-keys": Case(_append_to_config('"r": 8'), "key 'r' appears twice"),
    "json-nan": Case(_append_to_config('"lora_alpha": NaN'), "NaN is not a valid JSON value"),
    "json-infinity-literal": Case(_append_to_config('"lora_alpha": Infinity'), "Infinity"),
    "json-number-overflowing-to-inf": Case(_append_to_config('"x": 1e999'), "out of range"),
    "json-huge-integer": Case(_append_to_config('"r": ' + "9" * 5000), "5000 digits"),
    "json-unpaired-surrogate": Case(_append_to_config('"x": "\\udc00"'), "unpaired surrogate"),
    "config-wrong-types": Case(_set(r="eight", target_modules=5), "$.r: 'eight' is not of type"),
    "config-unknown-field-wrong-known-type": Case(
        _set(brand_new_option={"any": ["thing"]}, lora_alpha="high"), "$.lora_alpha"
    ),
    "config-malformed-peft-type": Case(_set(peft_type="super lora"), "does not match"),
    "config-nul-in-base-model": Case(
        _set(base_model_name_or_path="tiny/llama\u0000evil"), "control characters"
    ),
    "config-empty-file": Case(_emptied(CONFIG), "invalid JSON at line 1 column 1"),
    "config-fifo": Case(_fifo(CONFIG), f"has no {CONFIG}"),
    # safetensors weights
    "st-header-length-past-end": Case(_lying_length(+(10**6)), "larger than the"),
    "st-header-length-short": Case(_lying_length(-40), "header is not valid JSON"),
    "st-header-length-2**63": Case(_lying_length(2**63), "exceeds the 104857600 byte limit"),
    "st-header-not-json": Case(_weights(_header(b"not json at all", b"")), "not valid JSON"),
    "st-header-not-utf8": Case(_weights(_header(b'{"\xff": 1}', b"")), "not UTF-8"),
    "st-header-not-an-object": Case(_weights(_header(b"[]", b"")), "expected an object"),
    "st-header-duplicate-tensor": Case(
        _weights(_header(b'{"a": {}, "a": {}}', b"")), "declares 'a' more than once"
    ),
    "st-header-nested-deep": Case(
        _weights(_header(b'{"a": ' + b"[" * 900 + b"]" * 900 + b"}", b"")), "nested more than"
    ),
    "st-metadata-not-strings": Case(
        _weights(_header({"__metadata__": {"format": 1}, "a": _F32}, b"\0" * 8)),
        "__metadata__ must map strings to strings",
    ),
    "st-unknown-dtype": Case(
        _weights(_header({"a": {**_F32, "dtype": "Q4_K"}}, b"\0" * 8)), "unknown dtype 'Q4_K'"
    ),
    "st-overlapping-offsets": Case(
        _weights(_header({"a": _F32, "b": {**_F32, "data_offsets": [4, 12]}}, b"\0" * 12)),
        "overlap",
    ),
    "st-offsets-out-of-range": Case(
        _weights(_header({"a": {**_F32, "data_offsets": [0, 8000]}}, b"\0" * 8)), "reach past"
    ),
    "st-offsets-backwards": Case(
        _weights(_header({"a": {**_F32, "data_offsets": [8, 0]}}, b"\0" * 8)),
        "end before they begin",
    ),
    "st-huge-declared-shape": Case(
        _weights(
            _header(
                {"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8
            )
        ),
        "more than 2**64 bytes",
    ),
    "st-large-declared-shape-without-data": Case(
        _weights(
            _header(
                {"a": {"dtype": "F32", "shape": [2**30, 2**30], "data_offsets": [0, 8]}},
                b"\0" * 8,
            )
        ),
        "needs 4611686018427387904",
    ),
    "st-shape-product-over-2**64": Case(
        _weights(
            _header(
                {"a": {"dtype": "F32", "shape": [2**62] * 4, "data_offsets": [0, 8]}}, b"\0" * 8
            )
        ),
        "more than 2**64 bytes",
    ),
    "st-negative-shape": Case(
        _weights(_header({"a": {**_F32, "shape": [-2]}}, b"\0" * 8)),
        "not a list of non-negative integers",
    ),
    "st-bytes-outside-every-tensor": Case(
        _weights(_header({"a": {**_F32, "data_offsets": [8, 16]}}, b"\0" * 16)),
        "belong to no tensor",
    ),
    "st-nan-values": Case(_tensor_values(float("nan")), "contains NaN or Inf"),
    "st-inf-values": Case(_tensor_values(float("-inf")), "contains NaN or Inf"),
    "st-empty-file": Case(_emptied(WEIGHTS), "too short for a safetensors file"),
    "st-no-tensors": Case(_weights(_header({}, b"")), "holds no tensors"),
    "st-zero-size-tensor": Case(
        _weights(_header({"a": {"dtype": "F32", "shape": [0, 32], "data_offsets": [0, 0]}}, b"")),
        "has no elements",
    ),
    "st-fifo": Case(_fifo(WEIGHTS), f"no {WEIGHTS}"),
    "st-missing": Case(_removed(WEIGHTS), f"no {WEIGHTS}"),
    # the file system
    "symlink-weights-outside": Case(_symlink_weights_outside, "outside the adapter directory"),
    "symlink-config-to-system-file": Case(
        _symlink_config_to_system_file, "outside the adapter directory"
    ),
    "symlink-directory-outside": Case(
        _symlinked_directory_outside, "outside the adapter directory"
    ),
    "symlink-relative-escape": Case(_relative_symlink_escape, "outside the adapter directory"),
    "pickle-weights": Case(_pickle_only, "is a pickle file, which can run code"),
    "pickle-malicious": Case(_malicious_pickle, "is a pickle file, which can run code"),
    "pickle-malicious-convert": Case(
        _malicious_pickle, "refused by torch.load(weights_only=True)", ("--convert-pickle",)
    ),
    "pickle-malicious-torch-zip-convert": Case(
        _malicious_torch_file, "refused by torch.load(weights_only=True)", ("--convert-pickle",)
    ),
    # names
    "name-parent-directory": Case(_nothing, "invalid adapter name", ("--name", "../x")),
    "name-traversal-inside": Case(_nothing, "invalid adapter name", ("--name", "a/../../b")),
    "name-absolute-path": Case(_nothing, "invalid adapter name", ("--name", "/etc/passwd")),
    "name-dot-dot": Case(_nothing, "invalid adapter name", ("--name", "..")),
    "name-nul-like-control": Case(_nothing, "invalid adapter name", ("--name", "a\tb")),
    "name-too-long": Case(_nothing, "at most 96", ("--name", "x" * 97)),
    "alias-that-reads-as-version": Case(_nothing, "reads as a version", ("--alias", "v2")),
    "base-with-spaces": Case(_nothing, "invalid base model", ("--base", "a b@main")),
    "data-hash-not-hex": Case(_nothing, "sha256", ("--data-hash", "sha256:../../etc")),
}


def _count(registry: Registry, table: Any) -> int:
    with Session(registry.catalog.engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def assert_nothing_written(registry: Registry) -> None:
    assert registry.catalog.count_versions() == 0
    assert registry.catalog.audit_events() == []
    assert _count(registry, BaseModelRow) == 0
    assert _count(registry, BlobLeaseRow) == 0
    assert list(registry.blobs.iter_digests()) == []
    assert list(registry.blobs.staging_files()) == []
    tmp = registry.home.tmp_dir
    assert not tmp.exists() or list(tmp.iterdir()) == []


def push_case(case: Case, tmp_path: Path) -> tuple[Any, Path]:
    directory = write_adapter(tmp_path / "adapter", "lora", card=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    case.build(directory, scratch)
    result = CliRunner().invoke(main, ["push", str(directory), *case.args])
    return result, scratch


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_push_is_refused_and_writes_nothing(
    name: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    case = CASES[name]
    result, scratch = push_case(case, tmp_path)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert len(result.stderr) < 2000
    assert case.message in result.stderr
    assert "Traceback" not in result.output
    assert not (scratch / "marker").exists(), "a pickle payload ran"
    assert_nothing_written(sqlite_registry)


def test_the_pickle_payload_is_live(tmp_path: Path) -> None:
    # Unpickled the unsafe way, the payload does run: so its marker staying absent above
    # means no code path unpickled it.
    pickle.loads(pickle.dumps(_Payload(tmp_path / "marker")))
    assert (tmp_path / "marker").read_text() == "executed"


def test_unknown_fields_alone_are_accepted(tmp_path: Path, sqlite_registry: Registry) -> None:
    directory = write_adapter(tmp_path / "adapter", "lora")
    _set(option_from_a_future_peft={"nested": [1, 2.5, None, "x"]})(directory, tmp_path)
    result = CliRunner().invoke(main, ["push", str(directory)])
    assert result.exit_code == 0, result.output
    assert (
        sqlite_registry.get("adapter").manifest.config["option_from_a_future_peft"]["nested"][1]
        == 2.5
    )


@pytest.mark.parametrize(
    "name", ["config-nul-in-base-model", "json-unpaired-surrogate", "st-bytes-outside-every-tensor"]
)
def test_cases_that_once_reached_the_catalog_on_every_backend(
    name: str, tmp_path: Path, registry: Registry
) -> None:
    # These got past the readers before: a NUL that PostgreSQL cannot store, a string the
    # digest cannot encode, a file the safetensors library refuses to load.
    result, _ = push_case(CASES[name], tmp_path)
    assert result.exit_code == 1 and result.stderr.startswith("error: "), result.output
    assert CASES[name].message in result.stderr
    assert_nothing_written(registry)


def test_corpus_size() -> None:
    # docs/reliability.md quotes this number.
    assert len(CASES) == 60


def test_seed_adapter_is_valid(tmp_path: Path, sqlite_registry: Registry) -> None:
    # Without this, every case above could pass for the wrong reason.
    for name, data in adapter_files("lora").items():
        (tmp_path / name).write_bytes(data)
    result = CliRunner().invoke(main, ["push", str(tmp_path), "--name", "seed"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "local, hub",
    [
        ("../../../../tmp/pwned", "README.md"),  # where pull would write the file
        ("/etc/cron.d/pwned", "README.md"),
        ("README.md", "../../etc/x"),  # which file pull would fetch
        ("README.md", "/etc/passwd"),
    ],
)
def test_hub_manifest_paths_cannot_leave_the_adapter(
    local: str, hub: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    # A hostile repo controls registry-manifest.json, its digest included: the paths in it
    # are checked before anything is downloaded or written.
    from dataclasses import replace

    from registry.errors import HubError
    from registry.hub import remote_manifest
    from registry.store.manifest import FileEntry

    directory = write_adapter(tmp_path / "adapter", "lora", card=True)
    version = sqlite_registry.push(directory, name="honest").version
    remote = remote_manifest.for_version(version)
    files = tuple(
        FileEntry(local, f.sha256, f.size, f.role) if f.path == "README.md" else f
        for f in version.manifest.files
    )
    manifest = replace(version.manifest, files=files)
    paths = {k: v for k, v in remote.hub_paths.items() if k != "README.md"}
    paths[local] = hub
    forged = replace(remote, manifest=manifest, digest=manifest.digest, hub_paths=paths)
    with pytest.raises(HubError, match=r"would leave the adapter directory|unusable path"):
        remote_manifest.parse(forged.to_bytes(), "evil/repo")
