"""Single-file LoRAs of image-generation tools: diffusers and kohya (sd-scripts) safetensors.

These have no adapter_config.json; the tensor names and the header's ``__metadata__`` are the
whole format, so the file is stored and exported exactly as it is, and what the registry knows
about it (its rank, alpha and targets) is read from the keys and recorded as the manifest's
config:

    diffusers  ``<component>.<module path>.lora_A.weight`` / ``lora_B.weight`` (PEFT naming,
               diffusers >= 0.26) or ``...lora.down.weight`` / ``lora.up.weight`` (older), the
               component being ``unet``, ``transformer``, ``text_encoder`` or ``text_encoder_2``
    kohya      ``lora_unet_<module path with _>.lora_down.weight`` / ``lora_up.weight`` and a
               scalar ``.alpha``; text encoders are ``lora_te_`` (or ``lora_te1_``/``lora_te2_``)

down is ``[r, in]`` (``[r, in, kh, kw]`` for a convolution), up ``[out, r]`` (``[out, r, 1, 1]``).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.formats.config_file import CONFIG_NAME
from registry.formats.model import TensorInfo
from registry.formats.text import show, show_shape

DIFFUSERS_FILE = "pytorch_lora_weights.safetensors"  # what save_lora_weights writes
SINGLE_FILE_FORMATS: dict[str, str] = {"diffusers": "diffusers_lora", "kohya": "kohya_lora"}

_DIFFUSERS = re.compile(
    r"^(?P<component>unet|transformer|text_encoder|text_encoder_2)\.(?P<module>.+)\."
    r"(?P<part>lora_A\.weight|lora_B\.weight|lora\.down\.weight|lora\.up\.weight)$"
)
_KOHYA = re.compile(
    r"^lora_(?P<component>unet|te1|te2|te|transformer)_(?P<module>[A-Za-z0-9_]+)\."
    r"(?P<part>lora_down\.weight|lora_up\.weight|alpha)$"
)
_DOWN = frozenset({"lora_A.weight", "lora.down.weight", "lora_down.weight"})
_UP = frozenset({"lora_B.weight", "lora.up.weight", "lora_up.weight"})
_KOHYA_COMPONENTS = {
    "unet": "unet",
    "transformer": "transformer",
    "te": "text_encoder",
    "te1": "text_encoder",
    "te2": "text_encoder_2",
}
# Header metadata worth keeping in the manifest (kohya's also holds tag counts and paths).
_KEPT_METADATA = re.compile(
    r"ss_network_(dim|alpha|module|args)|ss_base_model_version|ss_sd_model_name|ss_v2|"
    r"modelspec\.(architecture|title|implementation)|format|lora_adapter_metadata"
)
_MAX_METADATA_VALUE = 4096
# Names of the families of other single-file formats, to say what a file was recognised as.
_OTHER_FAMILIES = (
    (re.compile(r"^base_model\.model\."), f"PEFT adapter weights without their {CONFIG_NAME}"),
    (re.compile(r"\.(hada_w1_a|hada_w2_a)$"), "LyCORIS LoHa"),
    (re.compile(r"\.(lokr_w1|lokr_w2|lokr_w1_a)$"), "LyCORIS LoKr"),
    (re.compile(r"^(model\.diffusion_model|first_stage_model|cond_stage_model)\."),
     "a full Stable Diffusion checkpoint"),
    (re.compile(r"\.(to_q|to_k|to_v|proj_in|conv_in)\.weight$"), "base model weights"),
)


@dataclass(frozen=True)
class LoraModule:
    """One adapted module of a single-file LoRA: where it is and its factors' shapes."""

    component: str  # unet, transformer, text_encoder, text_encoder_2
    module: str  # diffusers: the module path; kohya: the path with "_" for "."
    down: tuple[int, ...]
    up: tuple[int, ...]

    @property
    def rank(self) -> int:
        return self.down[0]


@dataclass
class SingleFileRead:
    """What a single-file LoRA's keys and metadata say, and everything wrong with them."""

    source_format: str
    modules: dict[tuple[str, str], LoraModule] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def single_file_format(tensors: Mapping[str, TensorInfo]) -> str | None:
    """``"diffusers"`` or ``"kohya"`` when most keys follow that grammar, else None."""
    for source_format, grammar in (("kohya", _KOHYA), ("diffusers", _DIFFUSERS)):
        hits = sum(1 for key in tensors if grammar.match(key))
        if tensors and hits * 2 >= len(tensors):
            return source_format
    return None


def describe_unknown(tensors: Mapping[str, TensorInfo]) -> str:
    """What a safetensors file that is no adapter format the registry reads looks like."""
    for pattern, family in _OTHER_FAMILIES:
        if any(pattern.search(key) for key in tensors):
            return f"recognised as {family}"
    sample = ", ".join(show(k) for k in sorted(tensors)[:3])
    return f"{len(tensors)} tensors ({sample}{', ...' if len(tensors) > 3 else ''})"


def read_single_file(
    source_format: str, path: Path, tensors: Mapping[str, TensorInfo], metadata: Mapping[str, str]
) -> SingleFileRead:
    """Check ``tensors`` against the format's grammar; the config records rank, alpha, targets."""
    grammar = _KOHYA if source_format == "kohya" else _DIFFUSERS
    result = SingleFileRead(source_format)
    parts: dict[tuple[str, str], dict[str, TensorInfo]] = {}
    for key, info in sorted(tensors.items()):
        match = grammar.match(key)
        if match is None:
            result.problems.append(f"tensor {show(key)}: not a {source_format} LoRA tensor")
            continue
        component = match.group("component")
        if source_format == "kohya":
            component = _KOHYA_COMPONENTS[component]
        parts.setdefault((component, match.group("module")), {})[match.group("part")] = info
    alphas: dict[str, float] = {}
    for (component, module), found in sorted(parts.items()):
        checked = _module(component, module, found, result.problems)
        if checked is None:
            continue
        result.modules[(component, module)] = checked
        alpha = found.get("alpha")
        if alpha is not None:
            value = _scalar(path, alpha)
            if alpha.numel != 1 or value is None:
                result.problems.append(
                    f"{component} {show(module)}: alpha has shape {show_shape(alpha.shape)} and "
                    f"dtype {alpha.dtype}, expected one float"
                )
            else:
                alphas[f"{component}.{module}"] = value
    if not result.modules and not result.problems:
        result.problems.append("holds no LoRA modules")
    result.config = _config(source_format, result.modules, alphas, metadata)
    return result


def _module(
    component: str, module: str, found: Mapping[str, TensorInfo], problems: list[str]
) -> LoraModule | None:
    label = f"{component} {show(module)}"
    down = next((found[p] for p in _DOWN if p in found), None)
    up = next((found[p] for p in _UP if p in found), None)
    if down is None or up is None:
        problems.append(f"{label}: expected a down and an up factor, found {', '.join(found)}")
        return None
    ok = (
        len(down.shape) in (2, 4)
        and len(up.shape) == len(down.shape)
        and up.shape[1] == down.shape[0]
        and (len(up.shape) == 2 or up.shape[2:] == (1, 1))
    )
    if not ok:
        problems.append(
            f"{label}: down {show_shape(down.shape)} and up {show_shape(up.shape)} do not "
            "make a low-rank pair ([r, in] and [out, r], or [r, in, kh, kw] and [out, r, 1, 1])"
        )
        return None
    return LoraModule(component, module, down.shape, up.shape)


def _scalar(path: Path, info: TensorInfo) -> float | None:
    formats = {"F32": "<f", "F16": "<e", "F64": "<d"}
    if info.numel != 1 or info.dtype not in (*formats, "BF16"):
        return None
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + length + info.offsets[0])
        raw = handle.read(info.offsets[1] - info.offsets[0])
    if info.dtype == "BF16":
        return float(struct.unpack("<f", b"\0\0" + raw)[0])
    return float(struct.unpack(formats[info.dtype], raw)[0])


def _config(
    source_format: str,
    modules: Mapping[tuple[str, str], LoraModule],
    alphas: Mapping[str, float],
    metadata: Mapping[str, str],
) -> dict[str, Any]:
    ranks = sorted({m.rank for m in modules.values()})
    config: dict[str, Any] = {
        "format": source_format,
        "rank": ranks[-1] if ranks else None,
        "components": sorted({m.component for m in modules.values()}),
        "modules": len(modules),
        "targets": sorted({_leaf(m) for m in modules.values()}),
    }
    if len(ranks) > 1:
        config["rank_pattern"] = {f"{m.component}.{m.module}": m.rank for m in modules.values()}
    distinct = sorted(set(alphas.values()))
    if len(distinct) == 1:
        config["alpha"] = distinct[0]
    elif distinct:
        config["alpha_pattern"] = dict(sorted(alphas.items()))
    kept = {
        key: value
        for key, value in sorted(metadata.items())
        if _KEPT_METADATA.fullmatch(key) and len(value) <= _MAX_METADATA_VALUE
    }
    if kept:
        config["metadata"] = kept
    return config


def _leaf(module: LoraModule) -> str:
    """The adapted layer's own name (``to_q``, ``q_proj``), the same for both formats."""
    if "." in module.module:
        return module.module.rsplit(".", 1)[1]
    found = re.search(r"(to_(?:q|k|v|out_0)|[qkvo]_proj|proj_(?:in|out)|fc[12]|ff_net_[02]"
                      r"(?:_proj)?|conv[12]?|conv_shortcut|out_proj|time_emb_proj)$", module.module)
    return found.group(1) if found else module.module.rsplit("_", 1)[-1]


def base_model_of(metadata: Mapping[str, str]) -> str | None:
    """The base the training tool recorded, when it did (kohya's ``ss_sd_model_name``)."""
    name = metadata.get("ss_sd_model_name", "").strip()
    return name if name and name.isprintable() and len(name) <= 512 else None
