"""registry.formats: reading PEFT and AdapterHub adapter directories, and refusing bad ones.

Good adapters are real PEFT saves of tiny models (tests/support/peft_adapters.py plus a few
variants built here); bad ones are written by hand so that each test breaks exactly what it names.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import struct
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import peft
import pytest
import torch
from safetensors.torch import load_file, save_file
from support.models import tiny_llama
from support.peft_adapters import ALL_KINDS, BASE_NAMES, MadeAdapter, make_adapter
from torch import nn

from registry.errors import FormatError, UnsafeFormatError, ValidationError
from registry.formats import (
    METHODS,
    AdapterSource,
    TensorInfo,
    config_bytes,
    find_nonfinite,
    normalise_peft_config,
    read_adapter_dir,
    read_adapter_files,
    read_safetensors_header,
    write_peft_adapter,
)

HIDDEN, KV, INTER = 32, 16, 64  # tiny Llama: q/o 32 -> 32, k/v 32 -> 16, mlp 32 <-> 64

# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MadeAdapter]:
    """Every factory adapter kind, saved once for the module."""
    root = tmp_path_factory.mktemp("made")
    return {kind: make_adapter(kind, root / kind) for kind in ALL_KINDS}


def lora_tensors(
    r: int = 4, modules: tuple[str, ...] = ("q_proj", "v_proj"), layers: int = 2
) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    out_sizes = {"q_proj": HIDDEN, "k_proj": KV, "v_proj": KV, "o_proj": HIDDEN}
    tensors = {}
    for layer in range(layers):
        for module in modules:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            a = torch.randn(r, HIDDEN, generator=generator)
            b = torch.randn(out_sizes[module], r, generator=generator)
            tensors[f"{prefix}.lora_A.weight"] = a
            tensors[f"{prefix}.lora_B.weight"] = b
    return tensors


def lora_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": "tiny/llama",
        "revision": None,
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ["v_proj", "q_proj"],
        "bias": "none",
        "inference_mode": True,
    }
    config.update(overrides)
    return config


def write_lora(
    directory: Path,
    config: dict[str, Any] | None = None,
    tensors: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    write_peft_adapter(directory, config or lora_config(), tensors or lora_tensors())
    return directory


def problems_of(directory: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        read_adapter_dir(directory, **kwargs)
    return caught.value.problems


def one(problems: list[str], *needles: str) -> str:
    """The single problem containing every needle (fails listing them all otherwise)."""
    hits = [p for p in problems if all(n in p for n in needles)]
    assert len(hits) == 1, f"expected one problem with {needles}, got {hits} among {problems}"
    return hits[0]


def raw_safetensors(
    path: Path, header: bytes | dict[str, Any], data: bytes, length: int | None = None
) -> Path:
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(body) if length is None else length
    path.write_bytes(struct.pack("<Q", size) + body + data)
    return path


def peft_save(model: nn.Module, config: Callable[[], peft.PeftConfig], directory: Path) -> Path:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft explains its choices (e.g. VeRA without projections)
        wrapped = peft.get_peft_model(model, config())
        wrapped.save_pretrained(str(directory), save_embedding_layers=False)
    return directory


class TinyConv(nn.Module):
    """Conv2d, Linear and Embedding layers: the module kinds PEFT adapts differently."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.lin = nn.Linear(8, 4)
        self.emb = nn.Embedding(10, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.lin(self.conv(x).mean((2, 3))))


# ---------------------------------------------------------------------------------------------
# real PEFT adapters read fine


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_factory_kind_reads(made: dict[str, MadeAdapter], kind: str) -> None:
    adapter = made[kind]
    source = read_adapter_dir(adapter.directory)
    assert source.source_format == "peft"
    assert source.method == adapter.method
    assert source.method in METHODS
    assert source.base_model_name == BASE_NAMES[kind]
    assert source.base_model_revision is None
    saved = load_file(str(adapter.directory / "adapter_model.safetensors"))
    assert set(source.tensors) == set(saved)
    for name, tensor in saved.items():
        assert source.tensors[name].shape == tuple(tensor.shape)
    roles = {f.path: f.role for f in source.files}
    assert roles == {
        "README.md": "card",
        "adapter_config.json": "config",
        "adapter_model.safetensors": "weights",
    }
    assert [f.path for f in source.files] == sorted(roles)
    assert json.loads(source.config_bytes) == source.config
    assert source.skipped == ()


def test_features_name_what_the_adapter_uses(made: dict[str, MadeAdapter]) -> None:
    features = {kind: read_adapter_dir(made[kind].directory).features for kind in made}
    assert "rslora" in features["rslora"]
    assert "dora" in features["dora"]
    assert "fan_in_fan_out" in features["lora_gpt2"]
    assert "embedding" in features["lora_embedding"]
    assert "modules_to_save" in features["lora_bert"]
    assert {"rank_pattern", "alpha_pattern"} <= set(features["lora_patterns"])
    assert features["lora"] == ()


def test_config_bytes_are_what_peft_writes(made: dict[str, MadeAdapter], tmp_path: Path) -> None:
    adapter = made["lora_gpt2"]
    # PEFT writes target_modules in set order (it varies with PYTHONHASHSEED); with a single
    # target there is one order, so PEFT's own bytes are exactly what we store.
    single = tmp_path / "single"
    peft.LoraConfig(target_modules=["c_attn"], fan_in_fan_out=True).save_pretrained(str(single))
    peft_bytes = (single / "adapter_config.json").read_bytes()
    assert config_bytes(normalise_peft_config(json.loads(peft_bytes))) == peft_bytes
    original = (adapter.directory / "adapter_config.json").read_bytes()
    source = read_adapter_dir(adapter.directory)
    assert not source.config_bytes.endswith(b"\n")
    # Set-valued fields arrive in set order: they are sorted, so equal adapters hash equal.
    config = json.loads(original)
    config["target_modules"] = ["c_proj", "c_attn"]
    (adapter.directory / "adapter_config.json").write_text(json.dumps(config, indent=2))
    shuffled = read_adapter_dir(adapter.directory)
    (adapter.directory / "adapter_config.json").write_bytes(original)
    assert shuffled.config["target_modules"] == ["c_attn", "c_proj"]
    assert shuffled.config_bytes == json.dumps(shuffled.config, indent=2, sort_keys=True).encode()
    # The config file's entry still points at the original bytes; callers store config_bytes.
    entry = next(f for f in shuffled.files if f.role == "config")
    assert entry.source == adapter.directory / "adapter_config.json"


def test_written_adapter_loads_in_peft(tmp_path: Path) -> None:
    config = lora_config(target_modules=["v_proj", "q_proj"], base_model_name_or_path=None)
    tensors = lora_tensors()
    write_lora(tmp_path / "a", config, tensors)
    assert json.loads((tmp_path / "a" / "adapter_config.json").read_text())["target_modules"] == [
        "q_proj",
        "v_proj",
    ]
    loaded = peft.PeftModel.from_pretrained(tiny_llama(), tmp_path / "a")
    state = loaded.state_dict()
    key = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.default.weight"
    name = "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"
    assert torch.equal(state[key], tensors[name])
    header = read_safetensors_header(tmp_path / "a" / "adapter_model.safetensors")
    assert header[1] == {"format": "pt"}


PEFT_VARIANTS: dict[str, tuple[Callable[[], nn.Module], Callable[[], peft.PeftConfig], str]] = {
    "regex_targets": (
        tiny_llama,
        lambda: peft.LoraConfig(r=2, target_modules=r".*\.(q|k)_proj"),
        "lora",
    ),
    "layers_to_transform": (
        tiny_llama,
        lambda: peft.LoraConfig(r=2, target_modules=["q_proj"], layers_to_transform=[1]),
        "lora",
    ),
    "exclude_modules": (
        tiny_llama,
        lambda: peft.LoraConfig(
            r=2,
            target_modules=["q_proj", "k_proj"],
            exclude_modules=["model.layers.0.self_attn.k_proj"],
        ),
        "lora",
    ),
    "trainable_tokens": (
        tiny_llama,
        lambda: peft.LoraConfig(r=2, target_modules=["q_proj"], trainable_token_indices=[1, 2]),
        "lora",
    ),
    "conv_dora_embedding": (
        TinyConv,
        lambda: peft.LoraConfig(r=2, target_modules=["conv", "lin", "emb"], use_dora=True),
        "lora",
    ),
    "lora_bias": (
        tiny_llama,
        lambda: peft.LoraConfig(r=2, target_modules=["q_proj"], lora_bias=True),
        "lora",
    ),
    "ia3_conv": (
        TinyConv,
        lambda: peft.IA3Config(target_modules=["conv", "lin"], feedforward_modules=["lin"]),
        "ia3",
    ),
    "loha_effective_conv": (
        TinyConv,
        lambda: peft.LoHaConfig(r=2, target_modules=["conv", "lin"], use_effective_conv2d=True),
        "loha",
    ),
    "lokr_decompose_both": (
        TinyConv,
        lambda: peft.LoKrConfig(
            r=2, target_modules=["conv", "lin"], decompose_both=True, use_effective_conv2d=True
        ),
        "lokr",
    ),
    "vera_without_projection": (
        tiny_llama,
        lambda: peft.VeraConfig(r=4, target_modules=["q_proj"], save_projection=False),
        "vera",
    ),
    "prefix_projection": (
        tiny_llama,
        lambda: peft.PrefixTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=3,
            prefix_projection=True,
            encoder_hidden_size=8,
        ),
        "prefix_tuning",
    ),
}


@pytest.mark.parametrize("variant", sorted(PEFT_VARIANTS))
def test_peft_variants_read(tmp_path: Path, variant: str) -> None:
    build, config, method = PEFT_VARIANTS[variant]
    source = read_adapter_dir(peft_save(build(), config, tmp_path / variant))
    assert source.method == method
    assert source.tensors


def test_adalora_with_ranks_pruned_to_zero(tmp_path: Path) -> None:
    # After rank allocation PEFT saves only the kept ranks: a module may keep none at all.
    module = "model.layers.0.self_attn.q_proj"
    kept = "model.layers.0.self_attn.v_proj"
    prefix = "base_model.model."
    tensors = {
        f"{prefix}{module}.lora_A": torch.zeros(0, HIDDEN),
        f"{prefix}{module}.lora_B": torch.zeros(HIDDEN, 0),
        f"{prefix}{module}.lora_E": torch.zeros(0, 1),
        f"{prefix}{kept}.lora_A": torch.ones(2, HIDDEN),
        f"{prefix}{kept}.lora_B": torch.ones(KV, 2),
        f"{prefix}{kept}.lora_E": torch.ones(2, 1),
    }
    config = {
        "peft_type": "ADALORA",
        "init_r": 3,
        "target_r": 1,
        "total_step": 10,
        "target_modules": ["q_proj", "v_proj"],
        "rank_pattern": {f"{module}.lora_E": [False] * 3, f"{kept}.lora_E": [True, False, True]},
    }
    write_peft_adapter(tmp_path, config, tensors)
    assert read_adapter_dir(tmp_path).features == ("rank_allocated",)
    # Without the rank_pattern the same empty tensors are an error.
    config.pop("rank_pattern")
    write_peft_adapter(tmp_path, config, tensors)
    problems = problems_of(tmp_path)
    one(problems, "q_proj.lora_A", "has no elements")
    one(problems, "q_proj: lora_E", "[3, 1]")


def test_extra_files_kept_and_training_state_skipped(
    made: dict[str, MadeAdapter], tmp_path: Path
) -> None:
    directory = tmp_path / "run"
    write_lora(directory)
    (directory / "README.md").write_text("# card\n")
    (directory / "tokenizer.json").write_text("{}")
    (directory / "special_tokens_map.json").write_text("{}")
    (directory / "optimizer.pt").write_bytes(b"not even read")
    (directory / "training_args.bin").write_bytes(b"not even read")
    (directory / "notes.pkl").write_bytes(b"not even read")
    (directory / "model.safetensors").write_bytes(b"not even read")
    (directory / "run.log.gz").write_bytes(b"\x1f\x8b")
    (directory / ".DS_Store").write_bytes(b"")
    (directory / "checkpoint-10").mkdir()
    (directory / "checkpoint-10" / "adapter_config.json").write_text("{")
    source = read_adapter_dir(directory)
    assert {f.path: f.role for f in source.files} == {
        "README.md": "card",
        "adapter_config.json": "config",
        "adapter_model.safetensors": "weights",
        "special_tokens_map.json": "extra",
        "tokenizer.json": "extra",
    }
    skipped = "\n".join(source.skipped)
    assert "optimizer.pt: training state, not part of the adapter" in source.skipped
    assert "training_args.bin: training state, not part of the adapter" in source.skipped
    assert "notes.pkl: pickle file, not read" in skipped
    assert "model.safetensors: a safetensors file other than the adapter weights" in skipped
    assert "run.log.gz: not an adapter, card, tokenizer or text file" in skipped
    assert ".DS_Store: hidden file" in skipped
    assert "checkpoint-10/: subdirectory, not read" in skipped
    assert list(source.skipped) == sorted(source.skipped)


def test_symlink_inside_the_directory_is_followed(tmp_path: Path) -> None:
    directory = write_lora(tmp_path / "a")
    (directory / "docs").mkdir()
    (directory / "docs" / "card.md").write_text("# card\n")
    (directory / "README.md").symlink_to(directory / "docs" / "card.md")
    source = read_adapter_dir(directory)
    card = next(f for f in source.files if f.role == "card")
    assert card.source.read_text() == "# card\n"


def test_read_adapter_files_rechecks_stored_blobs(
    made: dict[str, MadeAdapter], tmp_path: Path
) -> None:
    original = read_adapter_dir(made["dora"].directory)
    blobs = tmp_path / "objects"
    blobs.mkdir()
    files = {}
    for index, entry in enumerate(original.files):
        blob = blobs / f"blob{index}"
        data = original.config_bytes if entry.role == "config" else entry.source.read_bytes()
        blob.write_bytes(data)
        files[entry.path] = blob
    again = read_adapter_files(files, label="lora-x@1")
    assert again.method == "lora"
    assert again.config == original.config
    assert again.config_bytes == original.config_bytes
    assert again.tensors == original.tensors
    assert {f.path: f.role for f in again.files} == {f.path: f.role for f in original.files}


def test_read_adapter_files_refuses_pickles_and_odd_paths(tmp_path: Path) -> None:
    write_lora(tmp_path)
    files = {p.name: p for p in tmp_path.iterdir()}
    with pytest.raises(UnsafeFormatError, match=re.escape("adapter_model.bin is a pickle file")):
        read_adapter_files({**files, "adapter_model.bin": tmp_path / "x"}, label="x@1")
    with pytest.raises(FormatError, match=re.escape("not a plain relative file path")):
        read_adapter_files({**files, "../escape.json": tmp_path / "x"}, label="x@1")
    with pytest.raises(FormatError, match=re.escape("no adapter_config.json")):
        read_adapter_files(
            {"adapter_model.safetensors": files["adapter_model.safetensors"]}, label="x@1"
        )


def test_reading_headers_and_configs_never_imports_torch(made: dict[str, MadeAdapter]) -> None:
    weights = made["lora"].directory / "adapter_model.safetensors"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import registry.formats as f\n"
        "from registry.formats.config_file import parse_config\n"
        f"tensors, meta = f.read_safetensors_header(Path({str(weights)!r}))\n"
        f"parse_config(Path({str(weights.parent / 'adapter_config.json')!r}).read_bytes())\n"
        "assert tensors and meta == {'format': 'pt'}\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd()
    )
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# not an adapter directory at all


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="does not exist; expected an adapter directory"):
        read_adapter_dir(tmp_path / "nope")


def test_file_instead_of_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(FormatError, match="is not a directory"):
        read_adapter_dir(tmp_path / "f")


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(
        FormatError,
        match=re.escape("is empty; expected an adapter directory holding adapter_config.json"),
    ):
        read_adapter_dir(tmp_path)


def test_no_config_points_at_nested_adapters(tmp_path: Path) -> None:
    write_lora(tmp_path / "checkpoint-500")
    with pytest.raises(
        FormatError,
        match=r"no adapter_config\.json.*subdirectories holding adapters: checkpoint-500/",
    ):
        read_adapter_dir(tmp_path)


def test_config_without_weights(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps(lora_config()))
    with pytest.raises(
        FormatError, match=re.escape("has adapter_config.json but no adapter_model.safetensors")
    ):
        read_adapter_dir(tmp_path)


def test_symlink_escaping_the_directory_is_refused(tmp_path: Path) -> None:
    directory = write_lora(tmp_path / "a")
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (directory / "notes.txt").symlink_to(secret)
    with pytest.raises(
        UnsafeFormatError, match=r"notes\.txt is a symlink to .*secret\.txt, outside"
    ):
        read_adapter_dir(directory)


def test_symlinked_weights_escaping_are_refused(tmp_path: Path) -> None:
    source = write_lora(tmp_path / "real")
    directory = tmp_path / "linked"
    directory.mkdir()
    (directory / "adapter_config.json").write_bytes((source / "adapter_config.json").read_bytes())
    (directory / "adapter_model.safetensors").symlink_to(source / "adapter_model.safetensors")
    with pytest.raises(UnsafeFormatError, match="outside the adapter directory"):
        read_adapter_dir(directory)


# ---------------------------------------------------------------------------------------------
# pickle weights


def test_pickle_only_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps(lora_config()))
    torch.save(lora_tensors(), tmp_path / "adapter_model.bin")
    with pytest.raises(UnsafeFormatError) as caught:
        read_adapter_dir(tmp_path)
    message = str(caught.value)
    assert "adapter_model.bin is a pickle file, which can run code when loaded" in message
    assert "--convert-pickle" in message and "weights_only=True" in message


def test_pickle_converted_with_the_flag(tmp_path: Path) -> None:
    directory, work = tmp_path / "a", tmp_path / "work"
    directory.mkdir()
    work.mkdir()
    tensors = lora_tensors()
    (directory / "adapter_config.json").write_text(json.dumps(lora_config()))
    torch.save(tensors, directory / "adapter_model.bin")
    source = read_adapter_dir(directory, convert_pickle=True, work_dir=work)
    weights = next(f for f in source.files if f.role == "weights")
    assert weights.path == "adapter_model.safetensors"
    assert weights.source == work / "adapter_model.safetensors"
    assert "adapter_model.bin" not in {f.path for f in source.files}
    assert any(s.startswith("adapter_model.bin: pickle weights, converted") for s in source.skipped)
    converted = load_file(str(weights.source))
    assert all(torch.equal(converted[k], v) for k, v in tensors.items())
    assert read_safetensors_header(weights.source)[1] == {"format": "pt"}
    with pytest.raises(ValueError, match="work_dir"):
        read_adapter_dir(directory, convert_pickle=True)


def test_pickle_with_code_is_refused_even_with_the_flag(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps(lora_config()))
    torch.save({"x": torch.zeros(1), "evil": _Evil()}, tmp_path / "adapter_model.bin")
    with pytest.raises(
        UnsafeFormatError, match=re.escape("refused by torch.load(weights_only=True)")
    ):
        read_adapter_dir(tmp_path, convert_pickle=True, work_dir=tmp_path / "work")
    assert not (tmp_path / "work" / "adapter_model.safetensors").exists()


class _Evil:
    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.getenv, ("HOME",))


def test_pickle_next_to_safetensors_is_skipped(tmp_path: Path) -> None:
    write_lora(tmp_path)
    (tmp_path / "adapter_model.bin").write_bytes(b"never read")
    source = read_adapter_dir(tmp_path)
    assert any(
        s.startswith("adapter_model.bin: pickle copy of the weights") for s in source.skipped
    )


# ---------------------------------------------------------------------------------------------
# bad configs


def test_malformed_json(tmp_path: Path) -> None:
    write_lora(tmp_path)
    (tmp_path / "adapter_config.json").write_text('{\n  "peft_type": "LORA",\n  "r": 4,\n}')
    problem = one(problems_of(tmp_path), "adapter_config.json")
    assert "invalid JSON at line 4 column 1" in problem


def test_nan_in_config_is_not_json(tmp_path: Path) -> None:
    write_lora(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps(lora_config(lora_alpha=float("nan"))))
    one(problems_of(tmp_path), "adapter_config.json", "NaN")


def test_malformed_peft_type_is_refused(tmp_path: Path) -> None:
    write_lora(tmp_path, lora_config(peft_type="LORA/../OFT"))
    problem = one(problems_of(tmp_path), "peft_type")
    assert "'LORA/../OFT' does not match" in problem


def test_not_a_known_config(tmp_path: Path) -> None:
    write_lora(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"hello": "world"}))
    one(problems_of(tmp_path), "not a PEFT config (no peft_type)")


def test_wrong_types_are_all_reported(tmp_path: Path) -> None:
    config = lora_config(r="eight", lora_alpha=True, target_modules=["q_proj", 3], use_dora="yes")
    write_lora(tmp_path, config)
    problems = problems_of(tmp_path)
    one(problems, "$.r: 'eight' is not of type 'integer'")
    one(problems, "$.lora_alpha:")
    one(problems, "$.target_modules[1]: 3 is not of type 'string'")
    one(problems, "$.use_dora: 'yes' is not of type 'boolean'")
    assert all(p.startswith("adapter_config.json: ") for p in problems)


def test_target_regex_that_does_not_compile(tmp_path: Path) -> None:
    write_lora(tmp_path, lora_config(target_modules="(q_proj", rank_pattern={"[v": 2}))
    problems = problems_of(tmp_path)
    one(problems, "$.target_modules: '(q_proj' is not a valid regular expression")
    one(problems, "$.rank_pattern: key '[v' is not a valid regular expression")
    assert all(p.startswith("adapter_config.json: ") for p in problems)


def test_oversized_config_is_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("registry.formats.reader.MAX_CONFIG_BYTES", 64)
    monkeypatch.setattr("registry.formats.config_file.MAX_CONFIG_BYTES", 64)
    write_lora(tmp_path)
    one(problems_of(tmp_path), "adapter_config.json: more than 64 bytes, too large for a config")


# ---------------------------------------------------------------------------------------------
# tensors against the config


def test_rank_mismatch(tmp_path: Path) -> None:
    write_lora(tmp_path, lora_config(r=8))
    problems = problems_of(tmp_path)
    assert len(problems) == 8  # A and B of 2 modules in 2 layers
    problem = one(problems, "layers.0.self_attn.q_proj", "lora_A")
    assert "rank 4 (shape [4, 32]) but r is 8" in problem


def test_rank_pattern_is_honoured(tmp_path: Path) -> None:
    tensors = lora_tensors()
    for name in list(tensors):
        if ".v_proj." in name:
            a_or_b = tensors[name]
            tensors[name] = a_or_b[:2] if name.endswith("lora_A.weight") else a_or_b[:, :2]
    write_lora(tmp_path, lora_config(rank_pattern={"v_proj": 2}), tensors)
    assert read_adapter_dir(tmp_path).features == ("rank_pattern",)
    write_lora(tmp_path, lora_config(rank_pattern={"layers.1.self_attn.v_proj": 2}), tensors)
    problem = one(problems_of(tmp_path), "layers.0.self_attn.v_proj", "lora_A")
    assert "but r is 4" in problem


def test_missing_lora_b(tmp_path: Path) -> None:
    tensors = lora_tensors()
    del tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"]
    write_lora(tmp_path, tensors=tensors)
    problem = one(problems_of(tmp_path), "layers.1.self_attn.q_proj")
    assert "has lora_A.weight but no lora_B.weight" in problem


def test_untargeted_module(tmp_path: Path) -> None:
    tensors = lora_tensors(modules=("q_proj", "v_proj", "o_proj"))
    write_lora(tmp_path, tensors=tensors)
    problems = problems_of(tmp_path)
    assert len(problems) == 2
    problem = one(problems, "layers.0.self_attn.o_proj")
    assert "target_modules [q_proj, v_proj] does not select it" in problem


def test_tensor_of_another_method(tmp_path: Path) -> None:
    tensors = lora_tensors()
    tensors["base_model.model.model.layers.0.self_attn.q_proj.ia3_l"] = torch.ones(HIDDEN, 1)
    tensors["something.else"] = torch.ones(2)
    write_lora(tmp_path, tensors=tensors)
    problems = problems_of(tmp_path)
    one(problems, "q_proj.ia3_l: not a lora tensor")
    one(problems, "something.else: not a lora tensor")


def test_dora_magnitude_present_iff_use_dora(tmp_path: Path) -> None:
    write_lora(tmp_path, lora_config(use_dora=True))
    assert len(problems_of(tmp_path)) == 4
    tensors = lora_tensors()
    tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"] = torch.ones(
        HIDDEN
    )
    write_lora(tmp_path, tensors=tensors)
    one(problems_of(tmp_path), "q_proj: has lora_magnitude_vector but use_dora is false")


def test_nan_and_inf_tensors(tmp_path: Path) -> None:
    tensors = lora_tensors()
    tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"][1, 2] = float("nan")
    tensors["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"][0, 0] = float("inf")
    write_lora(tmp_path, tensors=tensors)
    problems = problems_of(tmp_path)
    assert len(problems) == 2
    one(problems, "layers.0.self_attn.q_proj.lora_A.weight contains NaN or Inf values")
    one(problems, "layers.1.self_attn.v_proj.lora_B.weight contains NaN or Inf values")


def test_find_nonfinite_across_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    save_file(
        {
            "ok16": torch.ones(3, dtype=torch.float16),
            "nan_bf16": torch.tensor([1.0, float("nan")], dtype=torch.bfloat16),
            "inf32": torch.tensor([float("-inf")]),
            "ints": torch.arange(3),
            "nan_f8": torch.tensor([float("nan")]).to(torch.float8_e5m2),
        },
        str(path),
    )
    assert find_nonfinite(path) == ["inf32", "nan_bf16", "nan_f8"]


def test_find_nonfinite_names_each_tensor_of_a_run_checked_at_once(tmp_path: Path) -> None:
    # Tensors back to back with one rule are checked in one pass, and one by one only when
    # that pass finds something: every bad one is named, and none of its neighbours.
    path = tmp_path / "t.safetensors"
    tensors = {f"t{i}": torch.ones(5, 3) for i in range(6)}
    tensors["t1"][4, 2] = float("nan")  # the last value of a tensor
    tensors["t4"][0, 0] = float("-inf")  # the first value of another
    tensors["c64"] = torch.ones(2, dtype=torch.complex64)  # F32's rule: same run
    tensors["h"] = torch.ones(3, dtype=torch.float16)  # another rule: a run of its own
    save_file(tensors, str(path))
    assert find_nonfinite(path) == ["t1", "t4"]
    tensors["t1"][4, 2] = tensors["t4"][0, 0] = 1.0
    save_file(tensors, str(path))
    assert find_nonfinite(path) == []
    tensors["c64"][1] = complex(float("inf"), 0)
    tensors["h"][2] = float("nan")
    save_file(tensors, str(path))
    assert find_nonfinite(path) == ["c64", "h"]


def test_every_problem_at_once(tmp_path: Path) -> None:
    tensors = lora_tensors(modules=("q_proj", "v_proj", "o_proj"))
    del tensors["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"]
    tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"] = torch.full(
        (HIDDEN, 2), float("nan")
    )
    write_lora(tmp_path, tensors=tensors)
    with pytest.raises(ValidationError) as caught:
        read_adapter_dir(tmp_path)
    problems = caught.value.problems
    one(problems, "layers.0.self_attn.v_proj", "no lora_B.weight")
    one(problems, "layers.1.self_attn.q_proj", "rank 2")
    one(problems, "layers.1.self_attn.q_proj.lora_B.weight contains NaN")
    one(problems, "layers.0.self_attn.o_proj", "does not select it")
    one(problems, "layers.1.self_attn.o_proj", "does not select it")
    assert str(caught.value).startswith(f"{tmp_path}: {len(problems)} problem(s): ")


def _replace(suffix: str, value: torch.Tensor) -> Callable[[dict[str, torch.Tensor]], None]:
    def alter(tensors: dict[str, torch.Tensor]) -> None:
        (key,) = [k for k in tensors if k.endswith(suffix)]
        tensors[key] = value

    return alter


def _drop(suffix: str) -> Callable[[dict[str, torch.Tensor]], None]:
    def alter(tensors: dict[str, torch.Tensor]) -> None:
        (key,) = [k for k in tensors if k.endswith(suffix)]
        del tensors[key]

    return alter


# kind: (how to break the saved tensors, the problem that must be reported)
PEFT_METHOD_BREAKAGES: dict[str, tuple[Callable[[dict[str, torch.Tensor]], None], str]] = {
    "ia3": (
        _replace("layers.0.mlp.down_proj.ia3_l", torch.ones(INTER, 1)),
        "ia3_l has shape [64, 1], expected [1, in] for a feedforward_modules target",
    ),
    "loha": (
        _replace("layers.0.self_attn.q_proj.hada_w2_b", torch.ones(3, HIDDEN)),
        "hada_w2_b has rank 3 (shape [3, 32]) but r is 4",
    ),
    "lokr": (
        _drop("layers.0.self_attn.q_proj.lokr_w1"),
        "missing lokr_w1 (or lokr_w1_a and lokr_w1_b)",
    ),
    "adalora": (
        _replace("layers.1.self_attn.v_proj.lora_E", torch.ones(6, 2)),
        "lora_E has shape [6, 2], expected [6, 1] (rank 6 from init_r)",
    ),
    "vera": (_drop("base_model.vera_A"), "base_model.vera_A is missing (save_projection is true"),
    "prompt_tuning": (
        _replace("prompt_embeddings", torch.ones(5, HIDDEN)),
        "shape [5, 32], expected [4, 32] = [num_virtual_tokens * num_transformer_submodules",
    ),
    "prefix_tuning": (
        _replace("prompt_embeddings", torch.ones(4, 32)),
        "expected [4, 64] = [num_virtual_tokens, num_layers * 2 * token_dim]",
    ),
    "p_tuning": (
        lambda tensors: tensors.update({"extra": torch.ones(1)}),
        "tensor extra: not a p_tuning tensor",
    ),
}


@pytest.mark.parametrize("kind", sorted(PEFT_METHOD_BREAKAGES))
def test_method_specific_problems(made: dict[str, MadeAdapter], tmp_path: Path, kind: str) -> None:
    alter, expected = PEFT_METHOD_BREAKAGES[kind]
    config = json.loads((made[kind].directory / "adapter_config.json").read_text())
    tensors = load_file(str(made[kind].directory / "adapter_model.safetensors"))
    alter(tensors)
    write_peft_adapter(tmp_path, config, tensors)
    one(problems_of(tmp_path), expected)


def test_zero_size_tensor(tmp_path: Path) -> None:
    tensors = lora_tensors()
    tensors["base_model.model.lm_head.weight"] = torch.zeros(0, HIDDEN)
    write_lora(tmp_path, lora_config(modules_to_save=["lm_head"]), tensors)
    one(problems_of(tmp_path), "lm_head.weight: has no elements (shape [0, 32])")


# ---------------------------------------------------------------------------------------------
# hostile safetensors headers


@pytest.fixture
def adapter_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "adapter_config.json").write_text(json.dumps(lora_config()))
    yield tmp_path


def test_header_length_larger_than_file(adapter_dir: Path) -> None:
    raw_safetensors(adapter_dir / "adapter_model.safetensors", {}, b"", length=10_000)
    problem = one(problems_of(adapter_dir), "adapter_model.safetensors")
    assert "header length 10000 bytes is larger than the 2 bytes that follow it" in problem


def test_header_length_absurd(adapter_dir: Path) -> None:
    raw_safetensors(adapter_dir / "adapter_model.safetensors", b"{}", b"", length=2**40)
    one(problems_of(adapter_dir), "exceeds the 104857600 byte limit")


def test_file_too_short(adapter_dir: Path) -> None:
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"\x01\x02")
    one(problems_of(adapter_dir), "too short for a safetensors file")


def test_header_not_json(adapter_dir: Path) -> None:
    raw_safetensors(adapter_dir / "adapter_model.safetensors", b"{not json", b"")
    one(problems_of(adapter_dir), "header is not valid JSON")


def test_header_duplicate_tensor(adapter_dir: Path) -> None:
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    header = f'{{"x": {entry}, "x": {entry}}}'.encode()
    raw_safetensors(adapter_dir / "adapter_model.safetensors", header, b"\0" * 4)
    one(problems_of(adapter_dir), "header declares 'x' more than once")


def test_overlapping_offsets(adapter_dir: Path) -> None:
    q = "base_model.model.model.layers.0.self_attn.q_proj"
    header = {
        f"{q}.lora_A.weight": {"dtype": "F32", "shape": [4, 32], "data_offsets": [0, 512]},
        f"{q}.lora_B.weight": {"dtype": "F32", "shape": [32, 4], "data_offsets": [256, 768]},
    }
    raw_safetensors(adapter_dir / "adapter_model.safetensors", header, b"\0" * 768)
    problem = one(problems_of(adapter_dir), "overlap")
    assert "lora_A.weight and" in problem and "bytes 256..512" in problem


def test_every_bad_tensor_declaration_is_reported(adapter_dir: Path) -> None:
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "beyond": {"dtype": "F32", "shape": [4], "data_offsets": [8, 1000]},
        "short": {"dtype": "F16", "shape": [4], "data_offsets": [8, 12]},
        "dtype": {"dtype": "Q4", "shape": [1], "data_offsets": [8, 9]},
        "shape": {"dtype": "F32", "shape": [-1], "data_offsets": [8, 12]},
        "backwards": {"dtype": "F32", "shape": [1], "data_offsets": [12, 8]},
        "odd": "not an object",
    }
    raw_safetensors(adapter_dir / "adapter_model.safetensors", header, b"\0" * 16)
    problems = problems_of(adapter_dir)
    one(problems, "tensor beyond: data_offsets [8, 1000] reach past the 16 byte data section")
    one(problems, "tensor short: data_offsets span 4 bytes but F16 [4] needs 8")
    one(problems, "tensor dtype: unknown dtype 'Q4'")
    one(problems, "tensor shape: shape [-1] is not a list of non-negative integers")
    one(problems, "tensor backwards: data_offsets [12, 8] end before they begin")
    one(problems, "tensor odd: declaration is not an object")
    assert len(problems) == 6  # header problems stop the tensor checks


def test_read_safetensors_header_values(made: dict[str, MadeAdapter], tmp_path: Path) -> None:
    tensors, metadata = read_safetensors_header(
        made["lora"].directory / "adapter_model.safetensors"
    )
    assert metadata == {"format": "pt"}
    info = tensors["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"]
    assert isinstance(info, TensorInfo)
    assert (info.dtype, info.shape) == ("F32", (KV, 4))
    assert info.offsets[1] - info.offsets[0] == KV * 4 * 4
    spans = sorted(t.offsets for t in tensors.values())
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    bad = raw_safetensors(tmp_path / "bad.safetensors", b"[]", b"")
    with pytest.raises(ValidationError, match="header is JSON list, expected an object"):
        read_safetensors_header(bad)


# ---------------------------------------------------------------------------------------------
# AdapterHub bottleneck adapters (the adapters library is not installed: written by hand)

HUB_HIDDEN, HUB_FACTOR, HUB_NAME = 32, 8, "sst-2"


def hub_config(**overrides: Any) -> dict[str, Any]:
    architecture: dict[str, Any] = {
        "adapter_residual_before_ln": False,
        "cross_adapter": False,
        "dropout": 0.0,
        "inv_adapter": None,
        "inv_adapter_reduction_factor": None,
        "is_parallel": False,
        "leave_out": [],
        "ln_after": False,
        "ln_before": False,
        "mh_adapter": True,
        "non_linearity": "swish",
        "original_ln_after": True,
        "original_ln_before": False,
        "output_adapter": True,
        "phm_layer": False,
        "reduction_factor": HUB_FACTOR,
        "residual_before_ln": True,
        "scaling": 1.0,
        "use_gating": False,
    }
    architecture.update(overrides)
    return {
        "config": architecture,
        "hidden_size": HUB_HIDDEN,
        "model_class": "BertAdapterModel",
        "model_name": "bert-base-uncased",
        "model_type": "bert",
        "name": HUB_NAME,
        "version": "adapters.1.2.0",
    }


def hub_tensors(
    down: int = HUB_HIDDEN // HUB_FACTOR, name: str = HUB_NAME
) -> dict[str, torch.Tensor]:
    tensors = {}
    for layer in range(2):
        for location in ("attention.output", "output"):
            prefix = f"bert.encoder.layer.{layer}.{location}.adapters.{name}"
            tensors[f"{prefix}.adapter_down.0.weight"] = torch.randn(down, HUB_HIDDEN)
            tensors[f"{prefix}.adapter_down.0.bias"] = torch.randn(down)
            tensors[f"{prefix}.adapter_up.weight"] = torch.randn(HUB_HIDDEN, down)
            tensors[f"{prefix}.adapter_up.bias"] = torch.randn(HUB_HIDDEN)
    return tensors


def write_hub(
    directory: Path,
    config: dict[str, Any] | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
    pickle: bool = False,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "adapter_config.json").write_text(
        json.dumps(config or hub_config(), indent=2, sort_keys=True)
    )
    if pickle:
        torch.save(tensors or hub_tensors(), directory / "pytorch_adapter.bin")
    else:
        save_file(tensors or hub_tensors(), str(directory / "adapter.safetensors"))
    return directory


def test_adapterhub_bottleneck_reads(tmp_path: Path) -> None:
    directory = write_hub(tmp_path / "hub")
    (directory / "head_config.json").write_text('{"config": {"head_type": "classification"}}')
    save_file(
        {"heads.sst-2.1.weight": torch.ones(2, HUB_HIDDEN)},
        str(directory / "model_head.safetensors"),
    )
    (directory / "pytorch_model_head.bin").write_bytes(b"never read")
    source = read_adapter_dir(directory)
    assert (source.source_format, source.method) == ("adapterhub", "bottleneck")
    assert source.weights_path == "adapter.safetensors"
    assert source.base_model_name == "bert-base-uncased"
    assert source.base_model_revision is None
    assert source.features == ("mh_adapter", "output_adapter")
    assert len(source.tensors) == 16
    assert {f.path: f.role for f in source.files} == {
        "adapter.safetensors": "weights",
        "adapter_config.json": "config",
        "head_config.json": "extra",
        "model_head.safetensors": "extra",
    }
    assert any(
        s.startswith("pytorch_model_head.bin: pickle prediction head") for s in source.skipped
    )
    assert source.config_bytes == (directory / "adapter_config.json").read_bytes()


def test_adapterhub_reduction_factor_per_layer(tmp_path: Path) -> None:
    tensors = hub_tensors()
    for name in list(tensors):
        if ".layer.1." in name:
            tensors.pop(name)
    layer1 = hub_tensors(down=HUB_HIDDEN // 16)
    tensors.update({k: v for k, v in layer1.items() if ".layer.1." in k})
    config = hub_config(reduction_factor={"1": 16, "default": HUB_FACTOR})
    assert read_adapter_dir(write_hub(tmp_path, config, tensors)).method == "bottleneck"


def test_adapterhub_shape_and_layout_problems(tmp_path: Path) -> None:
    tensors = hub_tensors()
    tensors["bert.encoder.layer.0.output.adapters.sst-2.adapter_up.weight"] = torch.ones(
        HUB_HIDDEN, 5
    )
    tensors["bert.encoder.layer.1.output.adapters.other.adapter_up.weight"] = torch.ones(
        HUB_HIDDEN, 4
    )
    tensors["bert.encoder.layer.1.attention.output.adapters.sst-2.weird"] = torch.ones(1)
    tensors["bert.pooler.dense.weight"] = torch.ones(2, 2)
    write_hub(tmp_path, hub_config(leave_out=[1]), tensors)
    problems = problems_of(tmp_path)
    one(problems, "layer.0.output", "adapter_up.weight has shape [32, 5], expected [32, 4]")
    one(problems, "adapters.other.adapter_up.weight: belongs to adapter 'other'")
    one(problems, "unknown bottleneck parameter 'weird'")
    one(problems, "bert.pooler.dense.weight: not an AdapterHub bottleneck tensor")
    assert len([p for p in problems if "layer 1 is in leave_out" in p]) == 2


def test_adapterhub_pickle_refused_then_converted(tmp_path: Path) -> None:
    directory = write_hub(tmp_path / "hub", pickle=True)
    with pytest.raises(UnsafeFormatError, match=re.escape("pytorch_adapter.bin is a pickle file")):
        read_adapter_dir(directory)
    source = read_adapter_dir(directory, convert_pickle=True, work_dir=tmp_path / "work")
    assert source.weights_path == "adapter.safetensors"
    assert next(f for f in source.files if f.role == "weights").source.parent == tmp_path / "work"


def test_adapterhub_other_architectures_are_not_read(tmp_path: Path) -> None:
    config = hub_config()
    config["config"] = {"architecture": "union", "configs": []}
    write_hub(tmp_path, config)
    problem = one(problems_of(tmp_path), "architecture")
    assert "AdapterHub 'union' adapters are not supported" in problem


def test_adapterhub_schema_problems(tmp_path: Path) -> None:
    config = hub_config(reduction_factor="big", mh_adapter="yes")
    del config["name"]
    write_hub(tmp_path, config)
    problems = problems_of(tmp_path)
    one(problems, "$.config.reduction_factor: 'big' is not of type 'number', 'object'")
    one(problems, "$.config.mh_adapter: 'yes' is not of type 'boolean'")
    one(problems, "$: 'name' is a required property")


def test_adapter_source_is_frozen(made: dict[str, MadeAdapter]) -> None:
    source = read_adapter_dir(made["lora"].directory)
    assert isinstance(source, AdapterSource)
    with pytest.raises(AttributeError):
        source.method = "ia3"  # type: ignore[misc]
