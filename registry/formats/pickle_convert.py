"""Converting pickle weights to safetensors, only when the caller explicitly asks for it."""

from __future__ import annotations

import pickle
from pathlib import Path

from registry.errors import FormatError, UnsafeFormatError

PICKLE_SUFFIXES: frozenset[str] = frozenset(
    {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"}
)


def pickle_refusal(shown_path: str) -> str:
    """The message for an adapter whose only weights are the pickle file at ``shown_path``."""
    return (
        f"{shown_path} is a pickle file, which can run code when loaded; re-save it with "
        "safetensors, or pass --convert-pickle to convert it with torch.load(weights_only=True)"
    )


def convert_pickle_weights(source: Path, target: Path) -> None:
    """Load ``source`` with ``torch.load(weights_only=True)`` and write it to ``target``.

    ``weights_only`` restricts unpickling to tensors and plain containers, so no code from the
    file runs. The result is written with metadata ``{"format": "pt"}`` as PEFT does.
    """
    import torch
    from safetensors.torch import save_file

    try:
        state = torch.load(source, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise UnsafeFormatError(
            f"{source.name}: refused by torch.load(weights_only=True): it holds objects other "
            f"than tensors ({_reason(exc)}); it was not converted"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, TypeError) as exc:
        raise FormatError(f"{source.name}: not a readable PyTorch weights file: {exc}") from exc
    if not isinstance(state, dict):
        raise FormatError(
            f"{source.name}: holds a {type(state).__name__}, expected a dict of named tensors"
        )
    tensors: dict[str, torch.Tensor] = {}
    odd = []
    for key, value in state.items():
        if isinstance(key, str) and isinstance(value, torch.Tensor) and not value.is_sparse:
            # A copy per tensor: safetensors refuses tensors that share storage.
            tensors[key] = value.detach().to("cpu").contiguous().clone()
        else:
            odd.append(repr(key))
    if odd:
        shown = ", ".join(odd[:5]) + (" ..." if len(odd) > 5 else "")
        raise FormatError(f"{source.name}: entries that are not named dense tensors: {shown}")
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), metadata={"format": "pt"})


def _reason(exc: Exception) -> str:
    # torch's message opens with advice to disable weights_only; keep only the specific cause.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    specific = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (specific or lines or [type(exc).__name__])[0][:200]
