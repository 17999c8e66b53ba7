"""The end-to-end tour behind ``adapters demo``: tiny generated models, no downloads."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.api import Registry
from registry.errors import GateError
from registry.store.catalog.engine import redacted_url

Say = Callable[[str], None]

HIDDEN = 64
INTERMEDIATE = 128
LAYERS = 2
VOCAB = 256
BASE_NAME = "demo/tiny-llama"


@dataclass(frozen=True)
class DemoOutcome:
    workdir: Path
    refs: tuple[str, ...]
    verified: int
    exported_to: Path


def _base_tensors(seed: int) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> Any:
        return torch.randn(*shape, generator=generator) * 0.02

    tensors = {
        "model.embed_tokens.weight": rand(VOCAB, HIDDEN),
        "lm_head.weight": rand(VOCAB, HIDDEN),
    }
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[f"{prefix}.self_attn.{proj}.weight"] = rand(HIDDEN, HIDDEN)
        tensors[f"{prefix}.mlp.gate_proj.weight"] = rand(INTERMEDIATE, HIDDEN)
        tensors[f"{prefix}.mlp.up_proj.weight"] = rand(INTERMEDIATE, HIDDEN)
        tensors[f"{prefix}.mlp.down_proj.weight"] = rand(HIDDEN, INTERMEDIATE)
        tensors[f"{prefix}.input_layernorm.weight"] = torch.ones(HIDDEN)
        tensors[f"{prefix}.post_attention_layernorm.weight"] = torch.ones(HIDDEN)
    tensors["model.norm.weight"] = torch.ones(HIDDEN)
    return tensors


def write_base_model(directory: Path, seed: int = 0) -> Path:
    """A Llama-shaped checkpoint (config.json + model.safetensors) from random weights."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file(_base_tensors(seed), str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": VOCAB,
        "torch_dtype": "float32",
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory


def write_lora(
    directory: Path, seed: int, rank: int = 8, targets: tuple[str, ...] = ("q_proj", "v_proj")
) -> Path:
    import torch

    from registry.formats import write_peft_adapter

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(LAYERS):
        for target in targets:
            module = f"base_model.model.model.layers.{layer}.self_attn.{target}"
            tensors[f"{module}.lora_A.weight"] = (
                torch.randn(rank, HIDDEN, generator=generator) * 0.01
            )
            tensors[f"{module}.lora_B.weight"] = (
                torch.randn(HIDDEN, rank, generator=generator) * 0.01
            )
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": BASE_NAME,
        "revision": None,
        "r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.05,
        "target_modules": sorted(targets),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "use_rslora": False,
        "use_dora": False,
    }
    write_peft_adapter(directory, config, tensors)
    return directory


def write_ia3(directory: Path, seed: int) -> Path:
    import torch

    from registry.formats import write_peft_adapter

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(LAYERS):
        prefix = f"base_model.model.model.layers.{layer}"
        tensors[f"{prefix}.self_attn.k_proj.ia3_l"] = 1 + 0.1 * torch.randn(
            HIDDEN, 1, generator=generator
        )
        tensors[f"{prefix}.self_attn.v_proj.ia3_l"] = 1 + 0.1 * torch.randn(
            HIDDEN, 1, generator=generator
        )
        tensors[f"{prefix}.mlp.down_proj.ia3_l"] = 1 + 0.1 * torch.randn(
            1, INTERMEDIATE, generator=generator
        )
    config = {
        "peft_type": "IA3",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": BASE_NAME,
        "revision": None,
        "target_modules": ["down_proj", "k_proj", "v_proj"],
        "feedforward_modules": ["down_proj"],
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_ia3_weights": True,
    }
    write_peft_adapter(directory, config, tensors)
    return directory


def write_training_data(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    train = directory / "sql-train.jsonl"
    rows = [
        {"question": f"how many rows in table t{i}?", "sql": f"SELECT count(*) FROM t{i};"}
        for i in range(50)
    ]
    train.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    corpus = directory / "tone-corpus"
    corpus.mkdir(exist_ok=True)
    for i in range(3):
        (corpus / f"part-{i}.txt").write_text(f"polite reply number {i}\n" * 20, encoding="utf-8")
    return train, corpus


def run_demo(registry: Registry, say: Say, workdir: Path | None = None) -> DemoOutcome:
    work = workdir or Path(tempfile.mkdtemp(prefix="adapters-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    catalog_url = redacted_url(registry.catalog.engine.url.render_as_string(hide_password=False))
    say(f"Registry: {registry.home.root} (catalog {catalog_url})")
    say(f"Working files: {work}")

    say("\n1. A tiny Llama-shaped base model, generated from random weights (no download).")
    base_dir = write_base_model(work / "base")
    instruct_dir = write_base_model(work / "base-instruct", seed=1)
    say(f"   {base_dir}: config.json + model.safetensors")
    say(f"   {instruct_dir}: same shapes, other weights (think base vs instruct)")

    say("\n2. Three adapters written in PEFT format: two LoRA versions and an IA3 adapter.")
    lora_v1 = write_lora(work / "sql-lora-v1", seed=1)
    lora_v2 = write_lora(
        work / "sql-lora-v2", seed=2, rank=16, targets=("q_proj", "k_proj", "v_proj", "o_proj")
    )
    ia3 = write_ia3(work / "tone-ia3", seed=3)
    train, corpus = write_training_data(work / "data")
    say(f"   {lora_v1.name}, {lora_v2.name}, {ia3.name}; data {train.name}, {corpus.name}/")

    say("\n3. Push them with the base weights (fingerprinted), data hashes and eval scores.")
    pushes = [
        registry.push(
            lora_v1,
            name="demo/sql-lora",
            base_path=base_dir,
            data=[train],
            evals={"exact_match": 0.71},
            eval_dataset="spider-dev",
            tags={"team": "analytics"},
        ),
        registry.push(
            lora_v2,
            name="demo/sql-lora",
            base_path=base_dir,
            data=[train],
            evals={"exact_match": 0.78},
            eval_dataset="spider-dev",
            tags={"team": "analytics"},
            alias="prod",
        ),
        registry.push(
            ia3,
            name="demo/tone-ia3",
            base_path=base_dir,
            data=[corpus],
            evals={"politeness": 0.88},
        ),
    ]
    for result in pushes:
        say(f"   $ adapters push ...  ->  {result.version.ref} {result.version.digest}")
    again = registry.push(lora_v1, name="demo/sql-lora", base_path=base_dir, data=[train])
    say(
        f"   Pushing {lora_v1.name} again is a no-op: {again.version.ref} (created={again.created})"
    )

    say("\n4. Find them again.")
    for version in registry.list(name="demo/*"):
        scores = ", ".join(f"{s.metric}={s.value}" for s in version.latest_evals())
        aliases = f" [{', '.join(version.aliases)}]" if version.aliases else ""
        base = version.base_model.name
        say(f"   {version.ref:<22} {version.method:<5} base={base}  {scores}{aliases}")
    prod = registry.get("demo/sql-lora@prod")
    older = registry.get("demo/sql-lora<2")
    say(f"   demo/sql-lora@prod resolves to {prod.ref}; 'demo/sql-lora<2' to {older.ref}")
    say(f"   {prod.ref} was trained on data sha256:{prod.training_data[0].sha256[:16]}...")

    say("\n5. Verify: re-hash every blob, recompute digests, re-validate config and tensors.")
    verified = 0
    for result in pushes:
        report = registry.verify(result.version.ref)
        verified += report.ok
        say(f"   {report.ref}: {'ok' if report.ok else 'FAILED'} ({len(report.checks)} checks)")

    say("\n6. Check against base models: the right one, and one with the same shapes.")
    right = registry.verify("demo/sql-lora@prod", base=str(base_dir))
    wrong = registry.verify("demo/sql-lora@prod", base=str(instruct_dir))
    say(f"   against {base_dir.name}: {'ok' if right.ok else 'FAILED'}")
    for check in wrong.failures:
        say(f"   against {instruct_dir.name}: refused, {check.name}: {check.detail}")

    say("\n7. Export the prod version back to a PEFT directory, byte for byte.")
    exported = registry.export("demo/sql-lora@prod", work / "export" / "sql-lora", overwrite=True)
    same = (exported.directory / "adapter_model.safetensors").read_bytes() == (
        lora_v2 / "adapter_model.safetensors"
    ).read_bytes()
    say(f"   {exported.directory}: {', '.join(exported.files)}")
    say(f"   tensors byte-identical to the pushed ones: {same}")

    say("\n8. Combine both LoRA versions into one rank-8 adapter (exact SVD of the sum).")
    combined = registry.combine(
        ["demo/sql-lora@1", "demo/sql-lora@2"],
        name="demo/sql-lora-combined",
        method="svd",
        weights=[0.5, 0.5],
        rank=8,
    )
    lineage = combined.lineage
    energy = lineage.parameters.get("retained_energy")
    parents = ", ".join(f"{p.name}@{p.version}" for p in lineage.parents)
    say(f"   {combined.version.ref}: {lineage.operation} of {parents}; retained energy {energy}")

    say("\n9. Promotion gate: prod needs exact_match >= 0.8 on spider-dev.")
    gate = ["exact_match@spider-dev>=0.8"]
    try:
        registry.set_alias(combined.version.ref, "prod", requires=gate)
    except GateError as exc:
        say(f"   refused: {exc}")
    registry.record_eval(combined.version.ref, {"exact_match": 0.83}, dataset="spider-dev")
    moved = registry.set_alias(combined.version.ref, "prod", requires=gate)
    say(f"   after an eval of 0.83: {moved.name}@prod -> {moved.version}")
    say(f"   audit log: {len(registry.log(limit=1000))} events so far")

    say("\nDone. Try: adapters list; adapters show demo/sql-lora@prod; adapters log")
    return DemoOutcome(work, tuple(r.version.ref for r in pushes), verified, exported.directory)
