"""combine, merge, resize and extract through the registry and the CLI: new versions with
lineage, shown by ``show`` and ``lineage``, refusals with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import peft
import pytest
import torch
import transformers
from click.testing import CliRunner, Result
from support.models import base_model, make_inputs, outputs, save_base
from support.ops_adapters import lora_deltas, save_adapter

from registry import Registry
from registry.cli import main
from registry.cli.cmd_ops import combine as combine_command
from registry.errors import IncompatibleAdaptersError
from registry.ops.methods import COMBINE_METHODS, MAJORITY_SIGNS


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def pushed(registry: Registry, tmp_path: Path) -> Path:
    """Two LoRA versions a@1 and b@1 for one recorded base; returns the base directory."""
    base_dir = save_base(base_model(), tmp_path / "base")
    registry.push(save_adapter("lora", tmp_path / "a", 1), name="a", base_path=base_dir)
    registry.push(save_adapter("lora_r8_qkv", tmp_path / "b", 2), name="b", base_path=base_dir)
    return base_dir


def test_combine_records_lineage_on_every_backend(
    registry: Registry, pushed: Path, tmp_path: Path
) -> None:
    a, b = registry.get("a"), registry.get("b")
    result = registry.combine(["a@1", "b"], name="ab", method="svd", weights=[0.7, 0.3], rank=4)
    assert result.created and result.version.ref == "ab@1"
    lineage = result.version.manifest.lineage
    assert lineage is not None and lineage.operation == "combine"
    assert [(p.name, p.version, p.digest, p.weight) for p in lineage.parents] == [
        ("a", "1", a.digest, 0.7),
        ("b", "1", b.digest, 0.3),
    ]
    assert lineage.parameters["method"] == "svd" and lineage.parameters["rank"] == 4
    assert 0 < lineage.parameters["retained_energy"] <= 1
    assert lineage.tool_version.startswith("adapter-registry ")
    assert result.version.base_model == a.base_model  # fingerprint carried over
    again = registry.combine(["a", "b"], name="ab", method="svd", weights=[0.7, 0.3], rank=4)
    assert not again.created and again.version.digest == result.version.digest

    shown = run("show", "ab")
    assert shown.exit_code == 0, shown.output
    assert "lineage: combine" in shown.stdout and a.digest in shown.stdout
    assert "retained_energy" in shown.stdout and "0.7" in shown.stdout
    tree = run("lineage", "ab")
    assert tree.exit_code == 0 and "a@1" in tree.stdout and "b@1" in tree.stdout
    listed = json.loads(run("list", "--json").stdout)
    assert "ab" in {v["name"] for v in listed}

    # The stored version is an ordinary PEFT adapter: exported, it loads unchanged.
    exported = registry.export("ab", tmp_path / "exported")
    model = peft.PeftModel.from_pretrained(base_model(), exported.directory)
    assert model.peft_config["default"].r == 4


def test_cli_combine_resize_merge(registry: Registry, pushed: Path, tmp_path: Path) -> None:
    done = run(
        "combine", "a", "b", "--method", "cat", "--weights", "0.5,1.5", "--name", "ab", "--json"
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["ref"] == "ab@1" and report["lineage"]["parameters"]["method"] == "cat"
    assert [p["weight"] for p in report["lineage"]["parents"]] == [0.5, 1.5]
    exported = registry.export("ab", tmp_path / "ab")
    expected = {m: 0.5 * d for m, d in lora_deltas(tmp_path / "a").items()}
    for module, delta in lora_deltas(tmp_path / "b").items():
        expected[module] = expected.get(module, 0) + 1.5 * delta
    for module, delta in lora_deltas(exported.directory).items():
        torch.testing.assert_close(delta, expected[module], rtol=1e-5, atol=1e-7)

    resized = run("resize", "ab", "--rank", "2", "--name", "ab-small")
    assert resized.exit_code == 0, resized.output
    assert resized.stdout.startswith("ab-small@1 sha256:")
    assert "retained energy" in resized.stderr

    merged = run("merge", "ab-small", "--base", str(pushed), "--out", str(tmp_path / "m"))
    assert merged.exit_code == 0, merged.output
    assert "6 of" in merged.stdout
    peft_model = peft.PeftModel.from_pretrained(
        base_model(), registry.export("ab-small", tmp_path / "small").directory
    )
    loaded = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "m")
    inputs = make_inputs(1)
    torch.testing.assert_close(
        outputs(loaded, inputs), outputs(peft_model, inputs), rtol=1e-4, atol=1e-5
    )


def test_cli_usage_errors_and_refusals(registry: Registry, pushed: Path, tmp_path: Path) -> None:
    assert run("combine", "a", "b", "--method", "ties", "--name", "x").exit_code == 2
    assert (
        run("combine", "a", "b", "--method", "svd", "--weights", "1", "--name", "x").exit_code == 2
    )
    assert run("combine", "a", "b", "--method", "cat", "--rank", "2", "--name", "x").exit_code == 2
    out_of_range = run("combine", "a", "b", "--method", "ties", "--density", "2", "--name", "x")
    assert out_of_range.exit_code == 1 and "density must be in (0, 1]" in out_of_range.stderr
    assert (
        run("merge", "a", "--base", str(pushed), "--out", "o", "--max-shard-size", "lots").exit_code
        == 2
    )

    bad_name = run("combine", "a", "b", "--method", "cat", "--name", "Not A Name")
    assert bad_name.exit_code == 1 and "name" in bad_name.stderr
    registry.push(save_adapter("dora", tmp_path / "d", 3), name="d", base_path=pushed)
    refused = run("combine", "a", "d", "--method", "cat", "--name", "x")
    assert refused.exit_code == 1 and "DoRA" in refused.stderr

    other = save_adapter("lora", tmp_path / "o", 4)
    registry.push(other, name="o", base="someone/else")
    with pytest.raises(IncompatibleAdaptersError, match="different base models"):
        registry.combine(["a", "o"], name="x", method="cat")
    different = run("combine", "a", "o", "--method", "cat", "--name", "x")
    assert different.exit_code == 1 and "--allow-different-bases" in different.stderr
    allowed = run("combine", "a", "o", "--method", "cat", "--name", "x", "--allow-different-bases")
    assert allowed.exit_code == 0, allowed.output
    assert "someone/else" in registry.get("x").manifest.lineage.parameters["different_bases"][0]

    wrong_base = save_base(base_model(seed=9), tmp_path / "wrong")
    out = tmp_path / "never"
    refused = run("merge", "a", "--base", str(wrong_base), "--out", str(out))
    assert refused.exit_code == 1 and "refusing to merge" in refused.stderr
    assert not out.exists()
    prefix_dir = tmp_path / "prefix"
    prefix = peft.get_peft_model(
        base_model(), peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=2)
    )
    prefix.save_pretrained(prefix_dir, save_embedding_layers=False)
    registry.push(prefix_dir, name="p")
    refused = run("merge", "p", "--base", str(pushed), "--out", str(out))
    assert refused.exit_code == 1 and "no base weights to fold" in refused.stderr


def test_cli_extract_records_the_base(registry: Registry, tmp_path: Path) -> None:
    base_dir = save_base(base_model(), tmp_path / "base")
    tuned = base_model()
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if name.endswith("q_proj.weight"):
                param.add_(torch.outer(torch.ones(param.shape[0]), torch.ones(param.shape[1])))
    tuned_dir = save_base(tuned, tmp_path / "tuned")
    done = run(
        "extract",
        "--base",
        str(base_dir),
        "--tuned",
        str(tuned_dir),
        "--rank",
        "1",
        "--name",
        "sft",
        "--base-name",
        "tiny/llama",
        "--json",
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["lineage"]["operation"] == "extract" and report["lineage"]["parents"] == []
    assert report["lineage"]["parameters"]["retained_energy"] == pytest.approx(1.0)
    version = registry.get("sft")
    assert version.base_model.name == "tiny/llama" and version.base_model.fingerprint
    assert registry.check_compat("sft", base_dir).ok


def test_cli_lists_the_library_methods() -> None:
    choices = {
        p.name: tuple(p.type.choices)
        for p in combine_command.params
        if isinstance(p.type, click.Choice)
    }
    assert choices == {"method": COMBINE_METHODS, "majority_sign": MAJORITY_SIGNS}


@pytest.mark.parametrize("command", ["combine", "merge", "resize", "extract"])
def test_help_does_not_import_torch(command: str, hermetic_env: Path) -> None:
    probe = (
        "import sys\nfrom cli import main\n"
        f"try:\n    main([{command!r}, '--help'], standalone_mode=False)\n"
        "finally:\n    print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Example:" in done.stdout and done.stdout.strip().endswith("False")


def test_combining_one_version_twice_is_flagged(registry: Registry, pushed: Path) -> None:
    registry.set_alias("a@1", "prod")
    done = run("combine", "a@1", "a@prod", "b", "--method", "cat", "--name", "twice")
    assert done.exit_code == 0, done.output
    assert (
        "note: the same version is combined more than once: a@1 (given as a@1, a@prod)"
        in done.stderr
    )
    once = run("combine", "a", "b", "--method", "cat", "--name", "once", "--json")
    assert json.loads(once.stdout)["notes"] == []
