"""Every PEFT type is stored, verified and exported exactly, and loads through PEFT.

Types the registry does not model (analysis "structural") and types it does not know at all
("opaque") are never refused for being unfamiliar: only a malformed config or unsafe weights are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import peft
import pytest
import torch
from click.testing import CliRunner
from support.every_peft_type import (
    NO_FORWARD,
    buildable_types,
    make_typed_adapter,
    typed_inputs,
)
from support.models import base_name, name_base, outputs, save_base, tiny_llama
from support.peft_adapters import make_adapter

from registry import Registry
from registry.bases.compat import NATIVE_METHODS
from registry.cli import main as cli_main
from registry.errors import UnsupportedMethodError, ValidationError
from registry.formats import analysis_of
from registry.store.manifest import Manifest

_SET_LIKE = ("target_modules", "exclude_modules", "feedforward_modules", "modules_to_save")


def _fresh_base() -> torch.nn.Module:
    return name_base(tiny_llama(0), base_name("llama"))


def _normalised(config: dict[str, object]) -> dict[str, object]:
    for key in _SET_LIKE:
        if isinstance(config.get(key), list):
            config[key] = sorted(config[key])  # type: ignore[type-var]
    return config


def _same_files(saved: Path, exported: Path) -> None:
    stored = sorted(p.name for p in exported.iterdir())
    assert stored == sorted(p.name for p in saved.iterdir())
    for name in stored:
        if name == "adapter_config.json":
            # Only the order of set-valued lists may differ (PEFT writes them in set order).
            assert _normalised(json.loads((exported / name).read_text())) == _normalised(
                json.loads((saved / name).read_text())
            )
        else:
            assert (exported / name).read_bytes() == (saved / name).read_bytes(), name


def _forward(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    return [outputs(model, inputs)]


def _adapter_state(model: torch.nn.Module, _: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    state = peft.get_peft_model_state_dict(model)
    return [state[key] for key in sorted(state)]


def _equal(got: list[torch.Tensor], expected: list[torch.Tensor]) -> bool:
    if len(got) != len(expected):
        return False
    return all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize("peft_type", buildable_types())
def test_every_peft_type_round_trips(
    peft_type: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    make_typed_adapter(peft_type, tmp_path / "adapter")
    inputs = typed_inputs(peft_type)
    # What PEFT makes of the saved directory itself (a few types, CPT among them, do not
    # reproduce their in-memory model bit for bit); the export must give exactly that.
    original = peft.PeftModel.from_pretrained(_fresh_base(), str(tmp_path / "adapter"))
    forward = _forward if peft_type not in NO_FORWARD else _adapter_state
    expected = forward(original, inputs)

    pushed = sqlite_registry.push(
        tmp_path / "adapter",
        name=f"types/{peft_type.lower().replace('_', '-')}",
        base_path=save_base(_fresh_base(), tmp_path / "base"),
    )
    version = pushed.version
    analysis = analysis_of(peft_type)
    assert version.method == peft_type.lower()
    assert version.manifest.analysis == analysis
    assert version.to_dict()["analysis"] == analysis

    report = sqlite_registry.verify(version.ref)
    assert report.ok, report.checks
    assert any(c.name == "analysis" and analysis in c.detail for c in report.checks)

    exported = sqlite_registry.export(version.ref, tmp_path / "export")
    _same_files(tmp_path / "adapter", exported.directory)
    reloaded = peft.PeftModel.from_pretrained(_fresh_base(), str(exported.directory))
    assert _equal(forward(reloaded, inputs), expected)

    with sqlite_registry.load(version.ref, _fresh_base(), mode="peft") as loaded:
        assert loaded.report.ok, loaded.report.checks
        assert _equal(forward(loaded.model, inputs), expected)
    # OFT and BOFT are stored as structural but their maths is modelled: they fold natively.
    if version.method in NATIVE_METHODS:
        with sqlite_registry.load(version.ref, _fresh_base()) as loaded:
            assert loaded.mode == "native"
            assert loaded.report.ok, loaded.report.checks
            got = forward(loaded.model, inputs)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    else:
        with pytest.raises(UnsupportedMethodError, match="mode='peft'"):
            sqlite_registry.load(version.ref, _fresh_base(), mode="native")


def _future_type(tmp_path: Path, peft_type: str = "FUTURE_LORA") -> Path:
    made = make_adapter("lora", tmp_path / "lora")
    directory = tmp_path / "future"
    shutil.copytree(made.directory, directory)
    config_path = directory / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["peft_type"] = peft_type
    config["a_key_from_the_future"] = {"any": [1, 2]}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
    return directory


def test_an_unknown_peft_type_is_stored_as_opaque(
    tmp_path: Path, sqlite_registry: Registry
) -> None:
    directory = _future_type(tmp_path)
    version = sqlite_registry.push(directory, name="future").version
    assert (version.method, version.manifest.analysis) == ("future_lora", "opaque")
    assert sqlite_registry.verify(version.ref).ok
    exported = sqlite_registry.export(version.ref, tmp_path / "export")
    _same_files(directory, exported.directory)
    with pytest.raises(UnsupportedMethodError, match=r"future_lora.*opaque.*mode='peft'"):
        sqlite_registry.load(version.ref, _fresh_base(), mode="native")

    runner = CliRunner()
    shown = runner.invoke(cli_main, ["show", version.ref])
    assert shown.exit_code == 0 and "analysis     opaque" in shown.output
    listed = runner.invoke(cli_main, ["list", "--json"])
    assert json.loads(listed.output)[0]["analysis"] == "opaque"
    checked = runner.invoke(cli_main, ["verify", version.ref, "--json"])
    names = {c["name"]: c["detail"] for c in json.loads(checked.output)["checks"]}
    assert names["analysis"].startswith("opaque")


def test_a_structural_type_on_another_architecture_does_not_bind(
    tmp_path: Path, sqlite_registry: Registry
) -> None:
    from support.models import tiny_gpt2

    make_typed_adapter("OFT", tmp_path / "adapter")
    version = sqlite_registry.push(tmp_path / "adapter", name="oft").version
    with pytest.raises(Exception, match="name no module of this base"):
        sqlite_registry.load(version.ref, tiny_gpt2(0))


@pytest.mark.parametrize("peft_type", ["", "lora", "LORA/../X", "A" * 65])
def test_malformed_peft_type_is_refused(
    peft_type: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    directory = _future_type(tmp_path, peft_type)
    with pytest.raises(ValidationError, match="peft_type"):
        sqlite_registry.push(directory, name="bad")
    assert sqlite_registry.list() == []


def test_manifests_without_analysis_keep_their_digest() -> None:
    old = {
        "format": "adapter-registry/manifest-1",
        "method": "lora",
        "source_format": "peft",
        "config": {"peft_type": "LORA"},
        "files": [],
        "base_model": {"name": "tiny/llama", "revision": None, "fingerprint": None},
        "training_data": [],
        "lineage": None,
        "requires": {},
    }
    manifest = Manifest.from_dict(old)
    assert manifest.analysis == "full"
    assert manifest.to_dict() == old
    structural = Manifest.from_dict({**old, "analysis": "structural"})
    assert structural.to_dict()["analysis"] == "structural"
    assert structural.digest != manifest.digest
    for bad in ("full", "deep", 3):
        with pytest.raises(Exception, match="analysis"):
            Manifest.from_dict({**old, "analysis": bad})
