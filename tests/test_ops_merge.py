"""Streaming merge into base checkpoints: same weights as PEFT's merge_and_unload, same logits
once loaded with transformers, shards and index handled, refusals explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from support.models import base_model, outputs, save_base
from support.ops_adapters import read_adapter, save_adapter
from support.peft_adapters import make_adapter

from registry import Registry
from registry.errors import (
    BaseModelMismatchError,
    ExportError,
    UnsupportedMethodError,
)
from registry.ops.merge import merge_checkpoint
from registry.ops.shards import INDEX_NAME, open_checkpoint, read_tensor

KINDS = ["lora", "rslora", "dora", "ia3", "lora_gpt2", "lora_bert"]


def _state(directory: Path) -> dict[str, torch.Tensor]:
    checkpoint = open_checkpoint(directory)
    found = {}
    for shard in checkpoint.shards:
        with shard.path.open("rb") as handle:
            for info in shard.tensors:
                found[info.name] = read_tensor(handle, info)
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_merged_directory_matches_peft(kind: str, tmp_path: Path) -> None:
    made = make_adapter(kind, tmp_path / "adapter")
    base = made.base_factory()
    base_dir = save_base(base, tmp_path / "base")
    (base_dir / "tokenizer.json").write_text("{}")
    report = merge_checkpoint(read_adapter(made.directory), base_dir, tmp_path / "merged")
    expected = outputs(made.peft_model, made.inputs)
    theirs = made.peft_model.merge_and_unload().state_dict()
    ours = _state(tmp_path / "merged")
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[name], rtol=1e-5, atol=1e-6, msg=name)
    assert report.tensors_changed >= 4
    assert {"config.json", "tokenizer.json"} <= set(report.copied)
    loaded = type(base).from_pretrained(tmp_path / "merged")
    torch.testing.assert_close(outputs(loaded, made.inputs), expected, rtol=1e-4, atol=1e-5)


def test_sharded_base_keeps_its_layout_and_can_be_resharded(tmp_path: Path) -> None:
    made = make_adapter("lora", tmp_path / "adapter")
    base_dir = tmp_path / "base"
    made.base_factory().save_pretrained(base_dir, max_shard_size="30KB")
    shards = sorted(p.name for p in base_dir.glob("*.safetensors"))
    assert len(shards) > 2 and (base_dir / INDEX_NAME).is_file()
    adapter = read_adapter(made.directory)
    expected = outputs(made.peft_model, made.inputs)

    kept = merge_checkpoint(adapter, base_dir, tmp_path / "same")
    assert sorted(p.name for p in (tmp_path / "same").glob("*.safetensors")) == shards
    index = json.loads((tmp_path / "same" / INDEX_NAME).read_text())
    original = json.loads((base_dir / INDEX_NAME).read_text())
    assert index["weight_map"] == original["weight_map"]
    assert index["metadata"]["total_size"] == kept.bytes_written

    single = merge_checkpoint(adapter, base_dir, tmp_path / "one", max_shard_bytes=10**9)
    assert single.shards == 1 and not (tmp_path / "one" / INDEX_NAME).exists()
    small = merge_checkpoint(adapter, base_dir, tmp_path / "small", max_shard_bytes=20_000)
    assert small.shards > 3 and (tmp_path / "small" / INDEX_NAME).is_file()
    for out in ("same", "one", "small"):
        loaded = transformers.LlamaForCausalLM.from_pretrained(tmp_path / out)
        torch.testing.assert_close(outputs(loaded, made.inputs), expected, rtol=1e-4, atol=1e-5)


def test_bf16_base_is_merged_in_float32_and_stored_as_bf16(tmp_path: Path) -> None:
    made = make_adapter("lora", tmp_path / "adapter")
    base = made.base_factory()
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    state = {k: v.to(torch.bfloat16) for k, v in base.state_dict().items()}
    save_file(state, str(base_dir / "model.safetensors"), metadata={"format": "pt"})
    merge_checkpoint(read_adapter(made.directory), base_dir, tmp_path / "merged")
    merged = load_file(str(tmp_path / "merged" / "model.safetensors"))
    theirs = made.peft_model.merge_and_unload().state_dict()
    name = "model.layers.0.self_attn.q_proj.weight"
    assert merged[name].dtype == torch.bfloat16
    torch.testing.assert_close(merged[name].float(), theirs[name], rtol=2e-2, atol=2e-2)
    assert torch.equal(merged["model.norm.weight"], state["model.norm.weight"])


def test_merge_refuses_what_cannot_be_folded_or_does_not_fit(tmp_path: Path) -> None:
    prefix = make_adapter("prefix_tuning", tmp_path / "prefix")
    base_dir = save_base(prefix.base_factory(), tmp_path / "base")
    with pytest.raises(UnsupportedMethodError, match="no base weights to fold"):
        merge_checkpoint(read_adapter(prefix.directory), base_dir, tmp_path / "out")
    gpt2 = make_adapter("lora_gpt2", tmp_path / "gpt2")
    with pytest.raises(BaseModelMismatchError, match=r"has no tensor transformer\.h\.0"):
        merge_checkpoint(read_adapter(gpt2.directory), base_dir, tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    lora = read_adapter(make_adapter("lora", tmp_path / "lora").directory)
    with pytest.raises(ExportError, match="not empty"):
        merge_checkpoint(lora, base_dir, tmp_path / "full")
    assert not list(tmp_path.glob(".*partial*"))  # nothing half-written is left behind
    merge_checkpoint(lora, base_dir, tmp_path / "full", overwrite=True)
    assert not (tmp_path / "full" / "keep.txt").exists()


def test_registry_merge_checks_the_base_first(hermetic_env: Path, tmp_path: Path) -> None:
    reg = Registry.open(hermetic_env, create=True)
    base_dir = save_base(base_model(), tmp_path / "base")
    other_dir = save_base(base_model(seed=5), tmp_path / "other")
    pushed = reg.push(save_adapter("lora", tmp_path / "a", 1), name="a", base_path=base_dir)
    result = reg.merge_into_base("a", base_dir, tmp_path / "merged")
    assert result.compat.ok and result.digest == pushed.version.digest
    assert result.merged.tensors_changed == 4
    with pytest.raises(BaseModelMismatchError, match=r"refusing to merge: .*weights"):
        reg.merge_into_base("a", other_dir, tmp_path / "wrong")
    assert not (tmp_path / "wrong").exists()
    with pytest.warns(UserWarning, match="refusing to merge"):
        forced = reg.merge_into_base("a", other_dir, tmp_path / "forced", force=True)
    assert not forced.compat.ok
    reg.close()
