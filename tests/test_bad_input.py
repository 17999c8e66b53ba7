"""Bad input: one-line error, exit 1, nothing written to catalog or blob store."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.peft_adapters import make_adapter

from registry import ArgumentError, InvalidNameError, Registry
from registry.cli import main


def _malformed_json(d: Path) -> None:
    (d / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8,,}')


def _malformed_peft_type(d: Path) -> None:
    config = json.loads((d / "adapter_config.json").read_text())
    config["peft_type"] = "super lora"
    (d / "adapter_config.json").write_text(json.dumps(config))


def _rank_mismatch(d: Path) -> None:
    config = json.loads((d / "adapter_config.json").read_text())
    config["r"] = config["r"] * 2
    (d / "adapter_config.json").write_text(json.dumps(config))


def _pickle_only(d: Path) -> None:
    (d / "adapter_model.safetensors").unlink()
    (d / "adapter_model.bin").write_bytes(pickle.dumps({"x": 1}))


def _emptied(d: Path) -> None:
    for child in d.iterdir():
        child.unlink()


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "malformed-json": (_malformed_json, "adapter_config.json"),
    "malformed-peft-type": (_malformed_peft_type, "super lora"),
    "tensors-not-matching-config": (_rank_mismatch, "lora_A"),
    "pickle-file": (_pickle_only, "pickle"),
    "empty-directory": (_emptied, "empty"),
}


def _assert_nothing_written(registry: Registry) -> None:
    assert registry.catalog.count_versions() == 0
    assert list(registry.blobs.iter_digests()) == []
    leftovers = [p for p in registry.home.root.rglob("*") if p.is_file() and ".tmp-" in p.name]
    assert leftovers == []
    assert [e.action for e in registry.catalog.audit_events()] == []


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_bad_adapter_directory(case: str, tmp_path: Path, registry: Registry) -> None:
    corrupt, expected = CORRUPTIONS[case]
    directory = make_adapter("lora", tmp_path / "bad").directory
    corrupt(directory)
    result = CliRunner().invoke(main, ["push", str(directory)])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert expected in result.stderr
    _assert_nothing_written(registry)


@pytest.mark.parametrize("name", ["../x", "A B", "a/b/c", "..", "x" * 97, "/abs"])
def test_bad_names(name: str, tmp_path: Path, registry: Registry) -> None:
    directory = make_adapter("lora", tmp_path / "ok").directory
    result = CliRunner().invoke(main, ["push", str(directory), "--name", name])
    assert result.exit_code == 1
    assert "invalid adapter name" in result.stderr or "characters long" in result.stderr
    _assert_nothing_written(registry)


def test_missing_directory(tmp_path: Path, registry: Registry) -> None:
    result = CliRunner().invoke(main, ["push", str(tmp_path / "absent")])
    assert result.exit_code == 1 and "absent" in result.stderr
    _assert_nothing_written(registry)


def test_missing_training_data_writes_nothing(tmp_path: Path, registry: Registry) -> None:
    directory = make_adapter("lora", tmp_path / "ok").directory
    result = CliRunner().invoke(main, ["push", str(directory), "--data", str(tmp_path / "gone")])
    assert result.exit_code == 1 and "gone" in result.stderr
    _assert_nothing_written(registry)


def test_pickle_converted_only_with_flag(tmp_path: Path, registry: Registry) -> None:
    import torch
    from safetensors.torch import load_file

    made = make_adapter("lora", tmp_path / "conv")
    tensors = load_file(str(made.directory / "adapter_model.safetensors"))
    (made.directory / "adapter_model.safetensors").unlink()
    torch.save(tensors, made.directory / "adapter_model.bin")
    refused = CliRunner().invoke(main, ["push", str(made.directory)])
    assert refused.exit_code == 1 and "--convert-pickle" in refused.stderr
    converted = CliRunner().invoke(main, ["push", str(made.directory), "--convert-pickle"])
    assert converted.exit_code == 0, converted.output
    version = registry.get("conv")
    assert {f.path for f in version.files} >= {"adapter_model.safetensors", "adapter_config.json"}
    assert "adapter_model.bin" not in {f.path for f in version.files}
    assert registry.verify("conv").ok


def test_parameters_outside_what_is_accepted(tmp_path: Path, registry: Registry) -> None:
    source = make_adapter("lora", tmp_path / "a").directory
    registry.push(source, name="a")
    refusals: list[tuple[Callable[[], object], str]] = [
        (lambda: registry.yank("a@1", "  "), "needs a reason"),
        (lambda: registry.yank("a@1", "x" * 5000), "characters long"),
        (lambda: registry.record_eval("a@1", {}), "no eval scores"),
        (lambda: registry.record_eval("a@1", {"acc": 0.5}, notes="n" * 5000), "notes are"),
        (lambda: registry.record_eval("a@1", {"acc": 0.5}, notes="a\x00b"), "control char"),
        (lambda: registry.lineage("a@1", depth=0), "depth must be"),
        (lambda: registry.log(limit=0), "--limit must be"),
        (lambda: registry.list(limit=0), "limit must be"),
        (lambda: registry.list(where=["acc=>1"]), "invalid condition"),
        (lambda: registry.set_alias("a@1", "prod", requires=["acc>>1"]), "--require also"),
        (lambda: registry.resize("a@1", 0, name="a-r0"), "rank must be at least 1"),
        (lambda: registry.combine(["a@1"], name="b", method="ties"), "needs a density"),
        (lambda: registry.combine(["a@1"], name="b", method="mean"), "unknown method"),
        (lambda: registry.add_base(tmp_path, quantization="q7"), "unknown quantization"),
        (lambda: registry.push(source, name="b", base_quantization="q7"), "unknown quantiz"),
    ]
    for call, message in refusals:
        with pytest.raises(ArgumentError, match=message) as info:
            call()
        assert not isinstance(info.value, InvalidNameError)
    # Names that break their grammar stay InvalidNameError, not ArgumentError.
    for call in (
        lambda: registry.get("A B"),
        lambda: registry.list(where=["a" * 200 + ">=1"]),
        lambda: registry.record_eval("a@1", {"pass@1": 0.5}),
        # Base names the catalog cannot hold (PostgreSQL: no NUL, 256 characters at most).
        lambda: registry.push(source, name="b", base="m" * 300),
        lambda: registry.push(source, name="b", base="m@r\x00"),
        lambda: registry.push(source, name="b", version="1." + ".".join(["1"] * 40)),
        lambda: registry.add_base(source, name="m" * 300),
    ):
        with pytest.raises(InvalidNameError) as caught:
            call()
        assert not isinstance(caught.value, ArgumentError)


@pytest.mark.parametrize(
    "args",
    [
        ["yank", "a@1", "--reason", " "],
        ["list", "--where", "acc=>1"],
        ["resize", "a@1", "--rank", "0", "--name", "a-r0"],
    ],
)
def test_bad_parameters_in_the_cli(args: list[str], tmp_path: Path, registry: Registry) -> None:
    registry.push(make_adapter("lora", tmp_path / "a").directory, name="a")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
