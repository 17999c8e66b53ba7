"""Adapters of other libraries' formats: AdapterHub LoRA, IA3 and prefix tuning; diffusers and
kohya single-file LoRAs.

The ``adapters`` library is not installed in the test environment (it pins transformers 4),
so its saves are written by hand in support/handmade.py exactly as its ``save_adapter`` writes
them: ``adapter_config.json`` (``json.dump(..., indent=2, sort_keys=True)``) holding the
architecture config under ``config``, and the adapter's tensors under their module paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from support.handmade import adapter_files, single_file_lora, write_adapter, write_diffusion_base

from registry import Registry
from registry.errors import FormatError, RegistryError, UnsafeFormatError, ValidationError
from registry.formats import read_adapter_dir

HUB_KINDS = ("adapterhub_lora", "adapterhub_ia3", "adapterhub_prefix_tuning")


def _problems(directory: Path) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        read_adapter_dir(directory)
    return caught.value.problems


def _rewrite(directory: Path, tensors: dict[str, torch.Tensor], **changes: object) -> None:
    config = json.loads((directory / "adapter_config.json").read_text())
    config["config"].update(changes)
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    save_file(tensors, str(directory / "adapter.safetensors"))


@pytest.mark.parametrize("kind", HUB_KINDS)
def test_adapterhub_kinds_read(kind: str, tmp_path: Path) -> None:
    source = read_adapter_dir(write_adapter(tmp_path / kind, kind))
    assert (source.source_format, source.method, source.analysis) == ("adapterhub", kind, "full")
    assert source.weights_path == "adapter.safetensors"
    assert source.base_model_name == "bert-base-uncased"


@pytest.mark.parametrize("kind", HUB_KINDS)
def test_adapterhub_kinds_push_verify_export(
    kind: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    saved = write_adapter(tmp_path / kind, kind)
    (saved / "head_config.json").write_text('{"config": {"head_type": "classification"}}')
    pushed = sqlite_registry.push(saved, name=kind.replace("_", "-"))
    assert (pushed.version.method, pushed.version.manifest.source_format) == (kind, "adapterhub")
    assert sqlite_registry.verify(pushed.version.ref).ok
    out = tmp_path / "out"
    sqlite_registry.export(pushed.version.ref, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in saved.iterdir())
    for path in saved.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name
    # Never applied as if it were PEFT's: the method check names the library that loads it.
    report = sqlite_registry.check_compat(pushed.version.ref, torch.nn.Linear(2, 2))
    method = next(c for c in report.checks if c.name == "method")
    assert method.status == "fail"
    assert "AdapterHub library" in method.detail


def test_adapterhub_lora_rank_and_layout_problems(tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "hub", "adapterhub_lora")
    key = "bert.encoder.layer.{}.attention.self.{}.loras.{}.{}"
    tensors = {
        key.format(0, "query", "sst-2", "lora_A"): torch.zeros(4, 32),
        key.format(0, "query", "sst-2", "lora_B"): torch.zeros(32, 4),
        key.format(0, "value", "sst-2", "lora_A"): torch.zeros(8, 32),
        key.format(1, "value", "other", "lora_A"): torch.zeros(8, 32),
        key.format(1, "query", "sst-2", "lora_A"): torch.zeros(8, 32),
        key.format(1, "query", "sst-2", "lora_B"): torch.zeros(32, 8),
        key.format(1, "query", "sst-2", "lora_C"): torch.zeros(8),
        "bert.pooler.dense.weight": torch.zeros(2, 2),
    }
    _rewrite(directory, tensors, leave_out=[1])
    problems = _problems(directory)
    text = "\n".join(problems)
    assert "layer.0.attention.self.query: lora_B has shape [32, 4], expected [out, 8]" in text
    assert "lora_A has shape [4, 32], expected [8, in]" in text
    assert "layer.0.attention.self.value: expected lora_A and lora_B, found lora_A" in text
    assert "belongs to adapter 'other' but the config names 'sst-2'" in text
    assert "unknown LoRA parameter 'lora_C'" in text
    assert "bert.pooler.dense.weight: not an AdapterHub LoRA tensor" in text
    assert "layer 1 is in leave_out" in text


def test_adapterhub_ia3_vectors_checked(tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "hub", "adapterhub_ia3")
    key = "bert.encoder.layer.0.attention.self.key.loras.sst-2"
    _rewrite(directory, {f"{key}.lora_B": torch.ones(32, 2), f"{key}.lora_A": torch.ones(1, 32)})
    text = "\n".join(_problems(directory))
    assert "lora_B has shape [32, 2], expected [out, 1]" in text
    assert "lora_A present, but IA3" in text
    # IA3 is r 1 by definition: the schema says so.
    _rewrite(directory, {f"{key}.lora_B": torch.ones(32, 1)}, r=2)
    assert any("$.config.r: 1 was expected" in p for p in _problems(directory))


def test_adapterhub_prefix_shapes_and_flat(tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "hub", "adapterhub_prefix_tuning")
    key = "bert.prefix_tuning.prefix_tunings.sst-2.self_prefix"
    tensors = {
        f"{key}.wte.weight": torch.zeros(6, 32),
        f"{key}.control_trans.0.weight": torch.zeros(16, 32),
        f"{key}.control_trans.0.bias": torch.zeros(16),
        f"{key}.control_trans.2.weight": torch.zeros(128, 16),
        f"{key}.control_trans.2.bias": torch.zeros(127),
    }
    _rewrite(directory, tensors)
    text = "\n".join(_problems(directory))
    assert "wte.weight has shape [6, 32], expected [5, 32]" in text
    assert "control_trans.2.bias has shape [127], expected [128]" in text
    # An ejected (flat) prefix is one vector of prefix_length x layers x 2 x hidden.
    _rewrite(directory, {f"{key}.control_trans": torch.zeros(5 * 2 * 2 * 32)}, flat=True)
    source = read_adapter_dir(directory)
    assert source.method == "adapterhub_prefix_tuning"
    assert "flat" in source.features
    _rewrite(directory, tensors, flat=True)
    assert any("is not a parameter of a flat prefix" in p for p in _problems(directory))


def test_adapterhub_lora_pickle_goes_through_the_conversion_policy(tmp_path: Path) -> None:
    directory = tmp_path / "hub"
    directory.mkdir()
    files = adapter_files("adapterhub_lora")
    (directory / "adapter_config.json").write_bytes(files["adapter_config.json"])
    from safetensors.torch import load

    torch.save(load(files["adapter.safetensors"]), directory / "pytorch_adapter.bin")
    with pytest.raises(UnsafeFormatError, match=r"pytorch_adapter\.bin is a pickle file"):
        read_adapter_dir(directory)
    source = read_adapter_dir(directory, convert_pickle=True, work_dir=tmp_path / "work")
    assert (source.method, source.weights_path) == ("adapterhub_lora", "adapter.safetensors")


def test_adapterhub_unknown_architecture_is_named(tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "hub", "adapterhub_lora")
    config = json.loads((directory / "adapter_config.json").read_text())
    config["config"] = {"architecture": "reft", "r": 1}
    (directory / "adapter_config.json").write_text(json.dumps(config))
    (problem,) = [p for p in _problems(directory) if "architecture" in p]
    assert "AdapterHub 'reft' adapters are not supported" in problem
    assert "bottleneck, LoRA, IA3 and prefix tuning adapters are read" in problem


# ---------------------------------------------------------------------------------------------
# diffusers / kohya single-file LoRAs (neither library installed: written as they write them)

SINGLE_KINDS = {"diffusers": "diffusers", "diffusers-old": "diffusers", "kohya": "kohya"}


@pytest.mark.parametrize("kind", sorted(SINGLE_KINDS))
def test_single_file_lora_read_from_file_and_directory(kind: str, tmp_path: Path) -> None:
    data = single_file_lora(kind)
    lone = tmp_path / "style.safetensors"
    lone.write_bytes(data)
    source = read_adapter_dir(lone)
    source_format = SINGLE_KINDS[kind]
    assert (source.source_format, source.method) == (source_format, f"{source_format}_lora")
    assert source.analysis == "structural"
    assert [f.path for f in source.files] == ["style.safetensors"]
    assert source.config["rank"] == 4
    assert source.config["components"] == ["text_encoder", "unet"]
    assert source.config["modules"] == 8
    assert source.config["targets"] == [
        "conv1",
        "proj_in",
        "q_proj",
        "to_k",
        "to_q",
        "to_v",
        "v_proj",
    ]
    if kind == "kohya":
        assert source.config["alpha"] == 2.0
        assert source.base_model_name == "tiny/sd"
        # Kept: what says how it was trained; left out: tag counts and the like.
        assert source.config["metadata"]["ss_network_dim"] == "4"
        assert "ss_tag_frequency" not in source.config["metadata"]
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "pytorch_lora_weights.safetensors").write_bytes(data)
    (saved / "README.md").write_text("# style\n")
    source = read_adapter_dir(saved)
    assert {f.path: f.role for f in source.files} == {
        "README.md": "card",
        "pytorch_lora_weights.safetensors": "weights",
    }


def test_single_file_lora_push_verify_export_exactly(
    tmp_path: Path, sqlite_registry: Registry
) -> None:
    lone = tmp_path / "style.safetensors"
    lone.write_bytes(single_file_lora("kohya"))
    pushed = sqlite_registry.push(lone)
    version = pushed.version
    assert (version.name, version.method) == ("style", "kohya_lora")
    assert version.manifest.source_format == "kohya"
    assert version.manifest.analysis == "structural"
    assert "not fingerprinted" in (pushed.base_unverified or "")
    report = sqlite_registry.verify(version.ref)
    assert report.ok
    analysis = next(c for c in report.checks if c.name == "analysis")
    assert "kohya LoRA" in analysis.detail
    out = tmp_path / "out"
    sqlite_registry.export(version.ref, out)
    # Its own format: the one file, no adapter_config.json made up.
    assert [p.name for p in out.iterdir()] == ["style.safetensors"]
    assert (out / "style.safetensors").read_bytes() == lone.read_bytes()
    method = next(
        c
        for c in sqlite_registry.check_compat(version.ref, torch.nn.Linear(2, 2)).checks
        if c.name == "method"
    )
    assert method.status == "fail" and "diffusers" in method.detail


def test_single_file_lora_binds_to_the_checkpoint_given(
    tmp_path: Path, sqlite_registry: Registry
) -> None:
    saved = tmp_path / "my-style"
    saved.mkdir()
    (saved / "pytorch_lora_weights.safetensors").write_bytes(single_file_lora("diffusers"))
    pipeline = write_diffusion_base(tmp_path / "sd")
    pushed = sqlite_registry.push(saved, base="tiny/sd", base_path=pipeline)
    assert pushed.version.name == "my-style"
    assert pushed.version.manifest.analysis == "full"
    assert "all 8 modules fit" in (pushed.base_unverified or "")
    # A UNet alone checks the UNet's modules; the text encoder's are left unchecked.
    unet = write_diffusion_base(tmp_path / "unet", pipeline=False)
    kohya = tmp_path / "k.safetensors"
    kohya.write_bytes(single_file_lora("kohya"))
    pushed = sqlite_registry.push(kohya, base_path=unet / "diffusion_pytorch_model.safetensors")
    assert pushed.version.manifest.analysis == "structural"
    assert "not checked: text_encoder" in (pushed.base_unverified or "")
    # Another model's UNet (wider layers): refused, naming the modules, nothing stored.
    wide = write_diffusion_base(tmp_path / "wide", hidden=64)
    before = sqlite_registry.count()
    with pytest.raises(RegistryError, match=r"of 8 LoRA modules do not fit .*to_q: down \[4, 32\]"):
        sqlite_registry.push(kohya, name="wrong", base_path=wide)
    assert sqlite_registry.count() == before


def test_unknown_safetensors_says_format_not_supported(tmp_path: Path) -> None:
    lycoris = tmp_path / "loha"
    lycoris.mkdir()
    tensors = {
        "lora_unet_x.hada_w1_a": torch.zeros(2, 2),
        "lora_unet_x.hada_w2_a": torch.zeros(2, 2),
    }
    save_file(tensors, str(lycoris / "loha.safetensors"))
    with pytest.raises(FormatError) as caught:
        read_adapter_dir(lycoris)
    message = str(caught.value)
    assert "this format is not supported" in message
    assert "recognised as LyCORIS LoHa" in message
    assert "has no adapter_config.json" not in message


def test_single_file_lora_problems_reported_together(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    tensors = {
        "lora_unet_a.lora_down.weight": torch.zeros(4, 8),
        "lora_unet_a.lora_up.weight": torch.zeros(8, 2),
        "lora_unet_b.lora_down.weight": torch.zeros(4, 8),
        "lora_unet_c.lora_down.weight": torch.zeros(4, 8),
        "lora_unet_c.lora_up.weight": torch.zeros(8, 4),
        "lora_unet_c.alpha": torch.zeros(2),
    }
    save_file(tensors, str(bad))
    text = "\n".join(_problems(bad))
    assert "unet a: down [4, 8] and up [8, 2] do not make a low-rank pair" in text
    assert "unet b: expected a down and an up factor" in text
    assert "unet c: alpha has shape [2]" in text
