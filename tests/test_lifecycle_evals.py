"""Evals (append-only, latest shown) and `compare`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from support.handmade import write_lora
from support.lifecycle import one_line_error, run
from support.peft_adapters import make_adapter

from registry import Registry
from registry.errors import ArgumentError
from registry.lifecycle.compare import lora_scaling


@pytest.fixture
def two_versions(registry: Registry, tmp_path: Path) -> Registry:
    registry.push(write_lora(tmp_path / "a", 1), name="x")
    registry.push(write_lora(tmp_path / "b", 2), name="x")
    return registry


# -- evals ----------------------------------------------------------------------------


def test_evals_append_and_latest_is_shown(two_versions: Registry) -> None:
    reg = two_versions
    reg.record_eval("x@1", {"accuracy": 0.90}, dataset="gsm8k")
    reg.record_eval("x@1", {"accuracy": 0.93, "f1": 0.5}, dataset="gsm8k", notes="rerun")
    reg.record_eval("x@1", {"accuracy": 0.70}, dataset="mmlu", split="test")
    version = reg.get("x@1")
    assert [(s.metric, s.value, s.dataset) for s in version.evals] == [
        ("accuracy", 0.90, "gsm8k"),
        ("accuracy", 0.93, "gsm8k"),
        ("f1", 0.5, "gsm8k"),
        ("accuracy", 0.70, "mmlu"),
    ]
    latest = {(s.metric, s.dataset): s.value for s in version.latest_evals()}
    assert latest == {("accuracy", "gsm8k"): 0.93, ("f1", "gsm8k"): 0.5, ("accuracy", "mmlu"): 0.7}
    assert version.evals[1].notes == "rerun" and version.evals[1].actor == "tester@ci"
    assert reg.get("x@2").evals == ()


def test_eval_cli_and_show_and_list_json(two_versions: Registry) -> None:
    done = run("eval", "x@2", "accuracy=0.91", "f1=0.8", "--dataset", "gsm8k", "--split", "test")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "x@2: recorded accuracy=0.91, f1=0.8 on gsm8k (test)"
    assert (
        run("eval", "x@2", "accuracy=0.95", "--dataset", "gsm8k", "--split", "test").exit_code == 0
    )
    shown = json.loads(run("show", "x@2", "--json").stdout)
    assert {(e["metric"], e["value"]) for e in shown["evals"]} == {("accuracy", 0.95), ("f1", 0.8)}
    assert [e["value"] for e in shown["eval_history"]] == [0.91, 0.8, 0.95]
    listed = json.loads(run("list", "--json").stdout)
    assert [len(v["eval_history"]) for v in listed] == [0, 3]
    human = run("show", "x@2").stdout
    assert "evals (latest per metric and dataset)" in human and "0.95" in human
    as_json = json.loads(run("eval", "x@1", "loss=1.5", "--json").stdout)
    assert as_json["ref"] == "x@1" and as_json["scores"][0]["metric"] == "loss"


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["x@1"], 2, "Missing argument"),
        (["x@1", "accuracy"], 2, "expected KEY=VALUE"),
        (["x@1", "accuracy=high"], 2, "must be a number"),
        (["x@1", "accuracy=inf"], 2, "must be finite"),
        (["x@1", "pass@1=0.5"], 1, "pass_at_1"),
        (["x@1", "acc>x=0.5"], 1, "invalid metric name"),
        (["x@1", "accuracy=0.5", "--dataset", "gsm 8k"], 1, "invalid dataset name"),
        (["x@1", "accuracy=0.5", "--split", "a=b"], 1, "invalid split name"),
        (["nope@1", "accuracy=0.5"], 1, "no adapter named 'nope'"),
        (["x@9", "accuracy=0.5"], 1, "x has no version 9"),
    ],
)
def test_bad_evals_write_nothing(
    two_versions: Registry, args: list[str], code: int, expected: str
) -> None:
    before = len(two_versions.log())
    result = run("eval", *args)
    assert result.exit_code == code, result.output
    assert expected in result.output
    if code == 1:
        assert one_line_error(result)
    assert two_versions.get("x@1").evals == ()
    assert len(two_versions.log()) == before


def test_record_eval_api_validates(two_versions: Registry) -> None:
    with pytest.raises(ArgumentError, match="no eval scores"):
        two_versions.record_eval("x@1", {})
    with pytest.raises(ArgumentError, match="not a finite number"):
        two_versions.record_eval("x@1", {"accuracy": math.nan})
    with pytest.raises(ArgumentError, match="not a number"):
        two_versions.record_eval("x@1", {"accuracy": "0.5"})  # type: ignore[dict-item]
    assert two_versions.get("x@1").evals == ()


def test_push_uses_the_same_eval_name_rules(registry: Registry, tmp_path: Path) -> None:
    directory = write_lora(tmp_path / "a", 1)
    refused = run("push", str(directory), "--eval", "pass@1=0.5")
    assert refused.exit_code == 1 and "pass_at_1" in refused.stderr
    refused = run("push", str(directory), "--eval", "f1=0.5", "--eval-dataset", "has space")
    assert refused.exit_code == 1 and "invalid dataset name" in refused.stderr
    assert registry.list() == []


# -- compare --------------------------------------------------------------------------


def peft_deltas(kind: str, tmp_path: Path, seed: int) -> dict[str, torch.Tensor]:
    """Every LoRA module's weight update as PEFT itself computes it."""
    made = make_adapter(kind, tmp_path / f"{kind}-{seed}", seed=seed)
    deltas = {}
    for name, module in made.peft_model.named_modules():
        adapters = {**getattr(module, "lora_A", {}), **getattr(module, "lora_embedding_A", {})}
        if hasattr(module, "get_delta_weight") and "default" in adapters:
            with torch.no_grad():
                delta = module.get_delta_weight("default")
            deltas[name.removeprefix("base_model.model.")] = delta
    return deltas


@pytest.mark.parametrize("kind", ["lora", "rslora", "lora_patterns", "lora_embedding"])
def test_similarity_matches_peft_deltas(kind: str, registry: Registry, tmp_path: Path) -> None:
    first = make_adapter(kind, tmp_path / "first", seed=1).directory
    second = make_adapter(kind, tmp_path / "second", seed=2).directory
    registry.push(first, name="a", base="tiny/llama")
    registry.push(second, name="b", base="tiny/llama")
    expected_a = peft_deltas(kind, tmp_path, 1)
    expected_b = peft_deltas(kind, tmp_path, 2)
    result = registry.compare("a", "b")
    assert {s.module for s in result.similarity} == set(expected_a)
    for sim in result.similarity:
        da, db = expected_a[sim.module].double(), expected_b[sim.module].double()
        cosine = float((da * db).sum() / (da.norm() * db.norm()))
        # PEFT forms the update in float32; the registry works in float64.
        assert sim.cosine == pytest.approx(cosine, abs=1e-6)
        assert sim.norm_a == pytest.approx(float(da.norm()), rel=1e-6)
        assert sim.norm_b == pytest.approx(float(db.norm()), rel=1e-6)
    assert result.unmatched_modules == ()
    same = registry.compare("a", "a")
    assert all(s.cosine == pytest.approx(1.0) for s in same.similarity)
    assert same.fields == () and same.similarity_note is None


def test_rank_and_alpha_patterns_change_the_scaling() -> None:
    config = {
        "r": 4,
        "lora_alpha": 8,
        "rank_pattern": {"v_proj": 2, "layers.0.self_attn.q_proj": 8},
        "alpha_pattern": {"up_proj": 16},
    }
    assert lora_scaling(config, "model.layers.0.self_attn.q_proj", 8) == 1.0
    assert lora_scaling(config, "model.layers.1.self_attn.q_proj", 4) == 2.0
    assert lora_scaling(config, "model.layers.1.self_attn.v_proj", 2) == 4.0
    assert lora_scaling(config, "model.layers.1.mlp.up_proj", 4) == 4.0
    # "q_proj" alone must not match "...sq_proj": PEFT anchors patterns at a dot.
    assert (
        lora_scaling({"r": 4, "lora_alpha": 8, "rank_pattern": {"q_proj": 2}}, "x.sq_proj", 4)
        == 2.0
    )
    assert lora_scaling({**config, "use_rslora": True}, "model.layers.1.k_proj", 4) == 4.0


def test_opposite_updates_have_cosine_minus_one(registry: Registry, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from registry.formats import write_peft_adapter

    positive = write_lora(tmp_path / "pos", 3)
    tensors = load_file(str(positive / "adapter_model.safetensors"))
    negated = {k: (-t if ".lora_B." in k else t) for k, t in tensors.items()}
    config = json.loads((positive / "adapter_config.json").read_text())
    write_peft_adapter(tmp_path / "neg", config, negated)
    registry.push(positive, name="pos")
    registry.push(tmp_path / "neg", name="neg")
    result = registry.compare("pos", "neg")
    assert len(result.similarity) == 4
    assert all(s.cosine == pytest.approx(-1.0) for s in result.similarity)
    assert all(s.norm_a == pytest.approx(s.norm_b) for s in result.similarity)


def test_compare_reports_evals_config_and_unmatched(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_lora(tmp_path / "a", 1), name="x", evals={"acc": 0.8}, eval_dataset="d")
    wider = write_lora(tmp_path / "b", 2, r=8, alpha=16, modules=("q_proj", "k_proj"))
    registry.push(wider, name="y", evals={"acc": 0.9, "f1": 0.4}, eval_dataset="d")
    result = registry.compare("x", "y")
    evals = {(e.metric, e.dataset): (e.a, e.b, e.delta) for e in result.evals}
    assert evals[("acc", "d")] == (0.8, 0.9, pytest.approx(0.1))
    assert evals[("f1", "d")] == (None, 0.4, None)
    fields = {f.field: (f.a, f.b) for f in result.fields}
    assert fields["config.r"] == (4, 8)
    assert fields["config.lora_alpha"] == (8, 16)
    assert fields["config.target_modules"] == (["q_proj", "v_proj"], ["k_proj", "q_proj"])
    assert "method" not in fields
    # Different ranks still compare: only the update's shape has to agree.
    assert {s.module for s in result.similarity} == {
        f"model.layers.{i}.self_attn.q_proj" for i in range(2)
    }
    assert set(result.unmatched_modules) == {
        f"model.layers.{i}.self_attn.{m}" for i in range(2) for m in ("k_proj", "v_proj")
    }
    shown = run("compare", "x", "y")
    assert shown.exit_code == 0, shown.output
    assert "config.r" in shown.stdout and "+0.1" in shown.stdout
    assert "4 modules not compared" in shown.stdout
    as_json = json.loads(run("compare", "x", "y", "--json").stdout)
    assert as_json["similarity"][0]["shape"] == [16, 16]


def test_compare_of_other_methods_says_why(registry: Registry, tmp_path: Path) -> None:
    registry.push(make_adapter("ia3", tmp_path / "i", seed=1).directory, name="i")
    registry.push(write_lora(tmp_path / "l", 1), name="l")
    result = registry.compare("i", "l")
    assert result.similarity == ()
    assert result.similarity_note is not None and "i@1 is ia3" in result.similarity_note
    assert {f.field: (f.a, f.b) for f in result.fields}["method"] == ("ia3", "lora")
    shown = run("compare", "i", "l")
    assert shown.exit_code == 0 and "note: per-module similarity needs two LoRA" in shown.stdout
    assert run("compare", "i", "nope").exit_code == 1
