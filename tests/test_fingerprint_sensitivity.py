"""The fingerprint's sensitivity table in docs/fingerprint.md, measured: perturbation size x
dtype pairing x mode -> verdict. ``ADAPTERS_WRITE_DOCS=1`` rewrites the table."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from registry.bases.comparison import compare
from registry.bases.exact_cast import is_cast
from registry.bases.file_source import fingerprint_files
from registry.bases.sampling import sample_indices

DOC = Path(__file__).resolve().parents[1] / "docs" / "fingerprint.md"
START, END = "<!-- sensitivity:start -->", "<!-- sensitivity:end -->"
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
PAIRINGS = [("F32", "F32"), ("F32", "F16"), ("F32", "BF16"), ("F16", "BF16"), ("BF16", "BF16")]
NAMES = [f"model.layers.{i}.mlp.up_proj.weight" for i in range(3)]


def _base() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {n: torch.randn(256, 256, generator=generator) * 0.02 for n in NAMES}


def _unsampled(name: str, numel: int) -> int:
    sampled = set(sample_indices(name, numel))
    return next(i for i in range(numel // 2, numel) if i not in sampled)


def _one_value(scale: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def apply(tensors: dict[str, torch.Tensor]) -> None:
        flat = tensors[NAMES[1]].view(-1)
        flat[_unsampled(NAMES[1], flat.numel())] *= 1 + scale

    return apply


def _one_row(tensors: dict[str, torch.Tensor]) -> None:
    tensors[NAMES[1]][7] *= 1 + 1e-3


def _everywhere(scale: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def apply(tensors: dict[str, torch.Tensor]) -> None:
        for tensor in tensors.values():
            tensor *= 1 + scale

    return apply


PERTURBATIONS: list[tuple[str, Callable[[dict[str, torch.Tensor]], None]]] = [
    ("none", lambda tensors: None),
    ("one value x(1+1e-3), unsampled", _one_value(1e-3)),
    ("one value x(1+0.5), unsampled", _one_value(0.5)),
    ("one row x(1+1e-3)", _one_row),
    ("every value x(1+1e-4)", _everywhere(1e-4)),
    ("every value x(1+1e-3)", _everywhere(1e-3)),
    ("every value x(1+1e-2)", _everywhere(1e-2)),
]


def _save(tensors: dict[str, torch.Tensor], dtype: str, path: Path) -> Path:
    save_file({n: t.to(DTYPES[dtype]).contiguous() for n, t in tensors.items()}, str(path))
    return path


def measure(tmp: Path) -> str:
    rows = ["| perturbation | expected -> found | sampled | exhaustive |", "|---|---|---|---|"]
    for label, perturb in PERTURBATIONS:
        changed = {n: t.clone() for n, t in _base().items()}
        perturb(changed)
        for a, b in PAIRINGS:
            expected_file = _save(_base(), a, tmp / f"expected-{a}.safetensors")
            found_file = _save(changed, b, tmp / f"found-{b}.safetensors")
            verdicts = []
            for exhaustive in (False, True):
                expected = fingerprint_files([expected_file], exhaustive=exhaustive)
                found = fingerprint_files([found_file], exhaustive=exhaustive)
                verdicts.append(compare(expected, found).verdict)
            rows.append(f"| {label} | {a} -> {b} | {verdicts[0]} | {verdicts[1]} |")
    return "\n".join(rows)


def test_sensitivity_table_matches_the_doc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTERS_DIGEST_CACHE", str(tmp_path / "cache"))
    table = measure(tmp_path)
    text = DOC.read_text(encoding="utf-8")
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    if os.environ.get("ADAPTERS_WRITE_DOCS") == "1":
        DOC.write_text(f"{before}{START}\n{table}\n{END}{after}", encoding="utf-8")
    assert f"{START}\n{table}\n{END}" in DOC.read_text(encoding="utf-8")
    # What the issue demands of the rule, whatever the table says.
    for line in table.splitlines():
        if line.startswith("| every value x(1+1e-3)"):
            assert line.endswith("| different | different |"), line
        if line.startswith("| none |") and "F32 -> F32" not in line and "BF16 -> BF16" not in line:
            assert "| cast | cast |" in line, line
        if line.startswith("| one value x(1+1e-3)") and "F32 -> F32" in line:
            assert line.endswith("| identical | different |"), line


@pytest.mark.parametrize(("a", "b"), [("F32", "F16"), ("F32", "BF16"), ("F16", "BF16")])
def test_exact_cast_rule_against_torch(a: str, b: str) -> None:
    generator = torch.Generator().manual_seed(1)
    values = torch.randn(4096, generator=generator) * torch.logspace(-7, 4, 4096)
    low, high = values.to(DTYPES[a]).double().tolist(), values.to(DTYPES[b]).double().tolist()
    assert all(is_cast(a, x, b, y) for x, y in zip(low, high, strict=True))
    # One unit in the last place off the true cast is not a cast (in F16's normal range,
    # where F16 is the finer of F16 and BF16).
    values = torch.randn(4096, generator=generator) * torch.logspace(-3, 3, 4096)
    low = values.to(DTYPES[a]).double().tolist()
    upward = torch.tensor(float("inf"), dtype=DTYPES[b])
    off = torch.nextafter(values.to(DTYPES[b]), upward).double().tolist()
    assert sum(not is_cast(a, x, b, y) for x, y in zip(low, off, strict=True)) > 0.9 * len(low)
