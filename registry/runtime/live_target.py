"""The live model as a base to check adapters against, kept between loads while its
weights are unchanged.

Fingerprinting a model reads samples of every tensor; a hot swap would pay that on every
load for a model nobody touched. The fingerprint is kept on the model with the state of
each of its tensors: the tensor object, its storage address, shape, dtype, device and
torch's version counter, which every in-place write through autograd's view of a tensor
bumps (``param.add_`` under ``no_grad``, ``copy_``, ``load_state_dict``, optimizer steps).
Replacing a parameter or its ``.data`` changes the object or the address. A native load
swaps merged values into ``.data`` and ``unload()`` swaps the very original tensors back,
so after an unload the state is what it was and the kept fingerprint still holds.

Writes through ``param.data`` (a tensor with a version counter of its own) are invisible
to torch's counter, so the key also holds two values of each tensor (its middle and last
elements): a write of the whole tensor that way (``param.data.copy_(other)``,
``.data.normal_()``) changes them. A write through ``.data`` of a few elements only can
still pass unseen: ``reverify=True`` fingerprints the model again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry.bases.target import BaseTarget, target_from_module

if TYPE_CHECKING:
    import torch

_KEPT = "_adapter_registry_target"


def weights_state(model: torch.nn.Module) -> tuple[tuple[Any, ...], ...]:
    """What changes whenever one of ``model``'s tensors is replaced or written in place."""
    found: list[tuple[Any, ...]] = []
    for kind, named in (
        ("p", model.named_parameters(remove_duplicate=False)),
        ("b", model.named_buffers(remove_duplicate=False)),
    ):
        for name, tensor in named:
            found.append(
                (
                    kind,
                    name,
                    id(tensor),
                    tensor.data_ptr(),
                    tensor._version,
                    tuple(tensor.shape),
                    tensor.dtype,
                    tensor.device,
                    _probe(tensor),
                )
            )
    return tuple(found)


def _probe(tensor: torch.Tensor) -> tuple[Any, ...]:
    """Two of the tensor's values, read cheaply; () where they cannot be."""
    count = tensor.numel()
    if count == 0 or tensor.is_meta or tensor.is_sparse or tensor.is_quantized:
        return ()
    if not tensor.is_contiguous():
        return ()
    flat = tensor.detach().view(-1)
    return (flat[count // 2].item(), flat[count - 1].item())


def live_target(model: torch.nn.Module, *, refresh: bool = False) -> BaseTarget:
    """``target_from_module(model)``, fingerprinted again only when a tensor or the config
    changed since the last call (or ``refresh``)."""
    state = weights_state(model)
    config = getattr(model, "config", None)
    config_dict = config.to_dict() if config is not None and hasattr(config, "to_dict") else {}
    kept: tuple[Any, dict[str, Any], BaseTarget] | None = getattr(model, _KEPT, None)
    if not refresh and kept is not None and kept[0] == state and kept[1] == config_dict:
        return kept[2]
    target = target_from_module(model)
    object.__setattr__(model, _KEPT, (state, config_dict, target))
    return target


def forget_target(model: torch.nn.Module) -> None:
    """Drop the fingerprint kept on ``model``."""
    if hasattr(model, _KEPT):
        delattr(model, _KEPT)
