"""Finding tensors that hold NaN or Inf. The only tensor-value read of a plain push."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import ValidationError

if TYPE_CHECKING:
    import torch

# Elements checked per step, so a huge tensor never needs a same-sized temporary mask.
_CHUNK = 1 << 22


def find_nonfinite(path: Path) -> list[str]:
    """Names of the tensors in safetensors file ``path`` that contain NaN or Inf, sorted.

    Tensors are memory-mapped and checked one at a time.
    """
    from safetensors import SafetensorError, safe_open

    bad: list[str] = []
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            for name in sorted(handle.keys()):
                tensor = handle.get_tensor(name)
                if (tensor.is_floating_point() or tensor.is_complex()) and not _finite(tensor):
                    bad.append(name)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ValidationError(str(path), [f"cannot read tensor values: {exc}"]) from exc
    return bad


def _finite(tensor: torch.Tensor) -> bool:
    import torch

    native = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    flat = tensor.reshape(-1)
    for start in range(0, flat.numel(), _CHUNK):
        chunk = flat[start : start + _CHUNK]
        if chunk.is_complex():
            chunk = torch.view_as_real(chunk)
        elif chunk.dtype not in native:
            # float8 and friends: isfinite is not implemented for every one of them.
            chunk = chunk.to(torch.float32)
        if not bool(torch.isfinite(chunk).all()):
            return False
    return True
