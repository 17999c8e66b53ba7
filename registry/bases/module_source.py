"""Fingerprints of a live ``torch.nn.Module``'s base weights, equal to those of the files
``save_pretrained`` would write for it.

torch is imported inside the functions, so importing this module does not import it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from registry.bases.checkpoint_names import layout_of_model
from registry.bases.fingerprint import Fingerprint, TensorSample
from registry.bases.sampling import assemble_fingerprint, sample_indices
from registry.bases.tensor_digests import module_tensor_digests
from registry.errors import FingerprintError

if TYPE_CHECKING:
    import torch

# PEFT tuner parameter prefixes, for adapter weights that sit outside a tuner layer.
_ADAPTER_PREFIXES = ("lora_", "ia3_", "hada_", "lokr_", "vera_", "oft_", "boft_", "adaption_")
# Children a wrapper keeps the original module under; its other children are adapter state.
_KEPT_CHILDREN = ("base_layer", "original_module")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "base_model.model.")


def fingerprint_module(
    module: torch.nn.Module, *, digest: Iterable[str] | bool = False
) -> Fingerprint:
    """Fingerprint a live module's base weights from its ``state_dict()``.

    PeftModel, DDP and torch.compile wrappers are unwrapped; names are normalised as
    save_pretrained would write them (adapter parameters skipped, ``.base_layer`` /
    ``.original_module`` dropped, transformers' checkpoint conversions reverted: renamed and
    fused tensors under their saved names) and tied weights are kept once, under their first
    name. Only the sampled elements are copied (a fused tensor is split as it is saved).
    ``digest`` adds full-content digests (``tensor_digests``): True for every tensor, or an
    iterable of tensor names (those a loaded adapter binds to), each read in full.
    """
    import torch

    base = _unwrap(module)
    state = base.state_dict()
    names = _normalised_names(list(state))
    layout = layout_of_model(base)
    dtypes = _torch_dtypes(torch)
    samples: dict[str, TensorSample] = {}
    kept: dict[str, torch.Tensor] = {}
    live_names: dict[str, str] = {}  # saved name -> the live tensor it comes from
    seen: set[tuple[Any, ...]] = set()
    for key, tensor in state.items():
        name = names.get(key)
        if name is None:
            continue
        _check_readable(torch, dtypes, tensor, key)
        identity = _storage_identity(tensor)
        if identity is not None and identity in seen:
            continue  # a tied weight: save_pretrained writes it once, under its first name
        if identity is not None:
            seen.add(identity)
        saved = {name: tensor} if layout is None else layout.saved_tensors(name, tensor)
        for saved_name, saved_tensor in saved.items():
            if saved_name in samples:
                raise FingerprintError(f"two parameters both map to the name {saved_name}")
            samples[saved_name] = _tensor_sample(torch, dtypes, saved_name, saved_tensor)
            kept[saved_name] = saved_tensor
            live_names[saved_name] = name
    fingerprint = assemble_fingerprint(samples)
    if digest is False:
        return fingerprint
    # Names asked for may be live or saved ones (an adapter names either).
    asked = set(digest) if digest is not True else set()
    wanted = None if digest is True else [n for n in kept if {n, live_names[n]} & asked]
    return fingerprint.with_digests(module_tensor_digests(kept, wanted))


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    import torch

    while True:
        get_base = getattr(module, "get_base_model", None)
        inner: object = None
        if callable(get_base) and hasattr(module, "peft_config"):
            inner = get_base()  # PeftModel; prompt-learning models hold no injected layers
        elif hasattr(module, "targeted_module_names") and hasattr(module, "peft_config"):
            inner = getattr(module, "model", None)  # a PEFT tuner (LoraModel, ...) itself
        elif isinstance(getattr(module, "_orig_mod", None), torch.nn.Module):
            inner = module._orig_mod  # torch.compile
        elif type(module).__name__ in ("DistributedDataParallel", "DataParallel"):
            inner = getattr(module, "module", None)
        if not isinstance(inner, torch.nn.Module):
            return module
        module = inner


def _normalised_names(keys: Sequence[str]) -> dict[str, str]:
    """Map state_dict keys to base-model names; adapter keys are left out."""
    stripped = {key: _strip_wrappers(key) for key in keys}
    # A module holding a base_layer/original_module child is a wrapper: only that child is base.
    wrappers: dict[str, str] = {}
    for name in stripped.values():
        parts = name.split(".")
        for i, part in enumerate(parts[:-1]):  # the last part names a tensor, not a module
            if part in _KEPT_CHILDREN:
                wrappers[".".join(parts[:i])] = part
    out: dict[str, str] = {}
    for key, name in stripped.items():
        normal = _base_name(name.split("."), wrappers)
        if normal is not None:
            out[key] = normal
    return out


def _strip_wrappers(key: str) -> str:
    while True:
        prefix = next((p for p in _WRAPPER_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            return key
        key = key[len(prefix) :]


def _base_name(parts: list[str], wrappers: Mapping[str, str]) -> str | None:
    kept: list[str] = []
    for i, part in enumerate(parts):
        if part == "modules_to_save" or part.startswith(_ADAPTER_PREFIXES):
            return None
        child = wrappers.get(".".join(parts[:i]))
        if child is not None:
            if part != child:
                return None  # adapter state inside a wrapper
            continue
        kept.append(part)
    return ".".join(kept)


def _torch_dtypes(torch: Any) -> dict[Any, str]:
    names = {
        "float64": "F64",
        "float32": "F32",
        "float16": "F16",
        "bfloat16": "BF16",
        "int64": "I64",
        "int32": "I32",
        "int16": "I16",
        "int8": "I8",
        "uint8": "U8",
        "uint16": "U16",
        "uint32": "U32",
        "uint64": "U64",
        "bool": "BOOL",
        "complex64": "C64",
        "float8_e4m3fn": "F8_E4M3",
        "float8_e5m2": "F8_E5M2",
        "float8_e4m3fnuz": "F8_E4M3FNUZ",
        "float8_e5m2fnuz": "F8_E5M2FNUZ",
        "float8_e8m0fnu": "F8_E8M0",
    }
    return {getattr(torch, attr): st for attr, st in names.items() if hasattr(torch, attr)}


def _check_readable(torch: Any, dtypes: Mapping[Any, str], tensor: torch.Tensor, key: str) -> None:
    if tensor.device.type == "meta":
        raise FingerprintError(f"{key} is on the meta device: load the weights first")
    if tensor.dtype not in dtypes or tensor.layout != torch.strided:
        raise FingerprintError(f"{key}: cannot fingerprint a {tensor.dtype} {tensor.layout} tensor")


def _storage_identity(tensor: torch.Tensor) -> tuple[Any, ...] | None:
    if tensor.numel() == 0:
        return None  # empty tensors may all report address 0; never treat them as tied
    return (
        tensor.device,
        tensor.data_ptr(),
        tensor.dtype,
        tuple(tensor.shape),
        tuple(tensor.stride()),
    )


def _tensor_sample(
    torch: Any, dtypes: Mapping[Any, str], name: str, tensor: torch.Tensor
) -> TensorSample:
    dtype = dtypes[tensor.dtype]
    shape = tuple(int(d) for d in tensor.shape)
    indices = sample_indices(name, tensor.numel())
    if not indices:
        return TensorSample(dtype, shape, b"")
    if tensor.is_contiguous():
        index = torch.tensor(indices, dtype=torch.int64, device=tensor.device)
        picked = tensor.detach().reshape(-1)[index]  # reshape is a view: only K values copied
    else:
        coords = [_unravel(i, shape) for i in indices]
        columns = tuple(torch.tensor(c, device=tensor.device) for c in zip(*coords, strict=True))
        picked = tensor.detach()[columns]
    return TensorSample(dtype, shape, _little_endian_bytes(torch, picked))


def _unravel(index: int, shape: Sequence[int]) -> list[int]:
    """C-order coordinates of flat ``index``."""
    coords: list[int] = []
    for dim in reversed(shape):
        index, coord = divmod(index, dim)
        coords.append(coord)
    return coords[::-1]


def _little_endian_bytes(torch: Any, values: torch.Tensor) -> bytes:
    # Reinterpret as same-width integers: numpy has no bfloat16 or float8.
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    array = values.cpu().contiguous().view(as_int[values.element_size()]).numpy()
    if sys.byteorder == "big":
        array = array.byteswap()
    return bytes(array.tobytes())
