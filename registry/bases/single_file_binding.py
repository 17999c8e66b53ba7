"""Binding a diffusers or kohya single-file LoRA to a UNet / transformer checkpoint.

Only safetensors headers are read (no diffusers, no torch): the base is a checkpoint file, a
component directory (``unet/`` with ``diffusion_pytorch_model*.safetensors``), or a pipeline
directory holding ``unet/``, ``transformer/``, ``text_encoder/``, ``text_encoder_2/``. Each LoRA
module must name a weight of its component whose shape its factors fit: down ``[r, in]`` (or
``[r, in, kh, kw]``) and up ``[out, r]`` against the base's ``[out, in(, kh, kw)]``. kohya names
a module by its path with ``_`` for ``.``, so the base's paths are matched the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from registry.errors import FormatError
from registry.formats.model import TensorInfo
from registry.formats.safetensors_header import read_safetensors_header
from registry.formats.single_file import LoraModule
from registry.formats.text import show, show_shape

COMPONENTS = ("unet", "transformer", "text_encoder", "text_encoder_2")
_DENOISER = "denoiser"  # a checkpoint given without saying which component it is
_SHOWN = 5


@dataclass(frozen=True)
class SingleFileBinding:
    checked: int  # modules whose component the base holds
    unbound: tuple[str, ...]  # "<component> <module>: why"
    unchecked: tuple[str, ...]  # components of the LoRA that the base given does not hold

    @property
    def ok(self) -> bool:
        return self.checked > 0 and not self.unbound

    def summary(self, base: Path) -> str:
        if self.checked == 0:
            return (
                f"{base} holds none of the LoRA's components ({', '.join(self.unchecked)}); "
                "give the pipeline directory or the component's checkpoint"
            )
        listed = "; ".join(self.unbound[:_SHOWN])
        more = f" and {len(self.unbound) - _SHOWN} more" if len(self.unbound) > _SHOWN else ""
        return (
            f"{len(self.unbound)} of {self.checked} LoRA modules do not fit {base}: {listed}"
            f"{more}; push against the base it was trained on"
        )


def base_components(path: Path) -> dict[str, dict[str, TensorInfo]]:
    """Component name -> its weights' headers, from a file, component or pipeline directory."""
    if path.is_file():
        return {_DENOISER: _headers([path])}
    if not path.is_dir():
        raise FormatError(f"base checkpoint {path} does not exist; give a file or directory")
    found = {
        name: _headers(sorted((path / name).glob("*.safetensors")))
        for name in COMPONENTS
        if (path / name).is_dir()
    }
    found = {name: tensors for name, tensors in found.items() if tensors}
    if not found:
        found = {_DENOISER: _headers(sorted(path.glob("*.safetensors")))}
    if not any(found.values()):
        raise FormatError(f"{path} holds no safetensors weights to check the LoRA against")
    return found


def _headers(paths: list[Path]) -> dict[str, TensorInfo]:
    tensors: dict[str, TensorInfo] = {}
    for path in paths:
        tensors.update(read_safetensors_header(path)[0])
    return tensors


def bind_single_file(
    source_format: str,
    modules: Mapping[tuple[str, str], LoraModule],
    components: Mapping[str, Mapping[str, TensorInfo]],
) -> SingleFileBinding:
    """Which of the LoRA's modules fit the base's weights; see the module docstring."""
    lookups = {
        name: _lookup(tensors, kohya=source_format == "kohya")
        for name, tensors in components.items()
    }
    checked = 0
    unbound: list[str] = []
    unchecked: set[str] = set()
    for (component, module), found in sorted(modules.items()):
        lookup = lookups.get(component)
        if lookup is None and component in ("unet", "transformer"):
            lookup = lookups.get(_DENOISER)
        if lookup is None:
            unchecked.add(component)
            continue
        checked += 1
        weight = lookup.get(module)
        if weight is None:
            unbound.append(f"{component} {show(module)}: no such weight in the base")
        elif not _fits(found, weight.shape):
            unbound.append(
                f"{component} {show(module)}: down {show_shape(found.down)} and up "
                f"{show_shape(found.up)} do not fit the base's {show_shape(weight.shape)}"
            )
    return SingleFileBinding(checked, tuple(unbound), tuple(sorted(unchecked)))


def _lookup(tensors: Mapping[str, TensorInfo], *, kohya: bool) -> dict[str, TensorInfo]:
    out: dict[str, TensorInfo] = {}
    for name, info in tensors.items():
        if name.endswith(".weight"):
            module = name[: -len(".weight")]
            out[module.replace(".", "_") if kohya else module] = info
    return out


def _fits(module: LoraModule, base: tuple[int, ...]) -> bool:
    down, up = module.down, module.up
    if len(base) not in (2, 4) or up[0] != base[0] or down[1] != base[1]:
        return False
    if len(down) == 4 and len(base) == 4:
        return down[2:] == base[2:]
    # A linear LoRA on a 1x1 convolution (SD's proj_in) fits; a 2-D one on a wider kernel not.
    return len(base) == 2 or base[2:] == (1, 1)
