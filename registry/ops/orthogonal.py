"""OFT and BOFT: the orthogonal rotation of a linear layer's input, folded into its weight.

Both methods rotate a layer's input by an orthogonal matrix ``R`` (``in x in``) before the base
layer, so the merged weight is ``W' = (R @ W.T).T``, computed in the rotation's dtype as peft
merges it; BOFT then scales each output row by ``boft_s``. ``R`` is built as peft 0.21.2 builds
it at eval time (dropout, ``module_dropout`` and ``boft_dropout``, is off):

- OFT: per block a skew-symmetric ``Q`` from the saved upper triangle (``oft_R.weight``,
  ``[blocks, b(b-1)/2]``), projected into an ``eps`` ball around zero first with ``coft``;
  the Cayley transform ``(I - Q)(I + Q)^-1``, or its Neumann series when
  ``use_cayley_neumann`` (``I + 2Q + 2Q^2 + ... + Q^k``); the blocks on the diagonal, one block
  repeated ``in / b`` times with ``block_share``.
- BOFT: per butterfly factor, the Cayley transform of each block of ``boft_R``
  (``[factors, blocks, b, b]``), laid on the diagonal and conjugated by the factor's butterfly
  permutation; the factors multiplied in order.

Only linear layers stored ``[out, in]`` are folded; a convolution, an embedding or a
``fan_in_fan_out`` layer is refused with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from registry.errors import BaseModelMismatchError, UnsupportedMethodError
from registry.ops.updates import WeightUpdate

OFT_SUFFIXES = ("oft_R.weight",)
BOFT_SUFFIXES = ("boft_R", "boft_s")


def _refuse_layout(method: str, module: str, config: Mapping[str, Any], shape: Any) -> None:
    if config.get("fan_in_fan_out"):
        raise UnsupportedMethodError(
            f"{method} on {module}: fan_in_fan_out layers (GPT-2 Conv1D) are not folded "
            "natively; load it with mode='peft'"
        )
    if shape is not None and len(shape) != 2:
        raise UnsupportedMethodError(
            f"{method} on {module}: only linear layers are folded natively, this weight has "
            f"shape {list(shape)}; load it with mode='peft'"
        )


def _skew(vector: torch.Tensor, block: int) -> torch.Tensor:
    """``[n, b(b-1)/2]`` upper triangles (row-major, diagonal excluded) -> ``Q - Q.T``."""
    rows, cols = torch.triu_indices(block, block, 1)
    upper = torch.zeros(vector.shape[0], block, block, dtype=vector.dtype)
    upper[:, rows, cols] = vector
    return upper - upper.transpose(-2, -1)


def _project(vector: torch.Tensor, block: int, eps: float) -> torch.Tensor:
    """COFT: each block's skew matrix moved into the ball of radius ``eps / sqrt(n)``."""
    skew = _skew(vector, block)
    radius = eps / torch.sqrt(torch.tensor(float(skew.shape[0])))
    norm = torch.norm(skew, dim=(1, 2), keepdim=True)
    projected = torch.where(norm <= radius, skew, radius * (skew / norm))
    rows, cols = torch.triu_indices(block, block, 1)
    return projected[:, rows, cols]


def _cayley_neumann(skew: torch.Tensor, terms: int) -> torch.Tensor:
    count, block = skew.shape[0], skew.shape[-1]
    rotation = torch.eye(block, dtype=skew.dtype).repeat(count, 1, 1)
    if terms > 1:
        rotation.add_(skew, alpha=2.0)
    if terms > 2:
        power = torch.bmm(skew, skew)
        rotation.add_(power, alpha=2.0)
        for _ in range(3, terms - 1):
            power = torch.bmm(power, skew)
            rotation.add_(power, alpha=2.0)
        rotation.add_(torch.bmm(power, skew))
    return rotation


def _cayley(skew: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(skew.shape[-1], dtype=skew.dtype).expand_as(skew)
    solved: torch.Tensor = torch.linalg.solve(eye + skew, eye - skew, left=False)
    return solved


def oft_rotation(config: Mapping[str, Any], weight: torch.Tensor, in_features: int) -> torch.Tensor:
    """OFT's ``in x in`` rotation from its saved ``oft_R.weight``."""
    blocks, elements = int(weight.shape[0]), int(weight.shape[1])
    block = (1 + math.isqrt(1 + 8 * elements)) // 2
    if block * (block - 1) // 2 != elements:
        raise UnsupportedMethodError(
            f"an oft_R of {elements} elements per block is no upper triangle of a square block"
        )
    vector = weight
    if config.get("coft"):
        vector = _project(vector, block, float(config.get("eps", 6e-5)))
    skew = _skew(vector, block)
    if config.get("use_cayley_neumann", True):
        rotation = _cayley_neumann(skew, int(config.get("num_cayley_neumann_terms", 5)))
    else:
        rotation = _cayley(skew).to(weight.dtype)
    count = in_features // block if config.get("block_share") else blocks
    if count * block != in_features:
        raise BaseModelMismatchError(
            f"the OFT rotation covers {count * block} inputs, the base layer has {in_features}",
            None,
        )
    shared = bool(config.get("block_share"))
    blocks_used = [rotation[0 if shared else i] for i in range(count)]
    diagonal: torch.Tensor = torch.block_diag(*blocks_used)  # type: ignore[no-untyped-call]
    return diagonal


def _butterfly(n: int, blocks: int, half: int, factors: int) -> torch.Tensor:
    """BOFT's butterfly permutation of ``n`` indices (peft's ``block_butterfly_perm``)."""
    if factors == 0:
        return torch.arange(n)
    if blocks * half * 2 > n:
        raise UnsupportedMethodError("invalid BOFT butterfly: too many blocks for the layer")
    size = n // blocks
    steps = size // half
    positions = [*range(0, steps, 2), *range(1, steps, 2)]
    order = torch.cat([torch.arange(p * half, p * half + half) for p in positions])
    indices = torch.arange(n)
    for start in range(0, n, size):
        indices[start : start + size] = indices[start : start + size][order]
    return indices


def boft_rotation(weight: torch.Tensor, in_features: int) -> torch.Tensor:
    """BOFT's ``in x in`` rotation from its saved ``boft_R`` ``[factors, blocks, b, b]``."""
    factors, blocks, block, _ = (int(d) for d in weight.shape)
    if blocks * block != in_features:
        raise BaseModelMismatchError(
            f"the BOFT rotation covers {blocks * block} inputs, the base layer has {in_features}",
            None,
        )
    data = weight.reshape(factors * blocks, block, block)
    skew = 0.5 * (data - data.transpose(1, 2))
    rotations = _cayley(skew).to(weight.dtype).reshape(factors, blocks, block, block)
    result: torch.Tensor | None = None
    for i in range(factors):
        perm = _butterfly(in_features, blocks // 2**i, block // 2, factors - 1)
        permutation = torch.zeros(in_features, in_features, dtype=weight.dtype)
        permutation[torch.arange(in_features), perm] = 1
        diagonal = torch.block_diag(*torch.unbind(rotations[i]))  # type: ignore[no-untyped-call]
        factor = permutation @ (diagonal @ permutation.T)
        result = factor if result is None else factor @ result
    assert result is not None
    return result


def oft_updates(
    config: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, torch.Tensor]],
    base_shapes: Mapping[str, torch.Size] | None = None,
) -> list[WeightUpdate]:
    updates = []
    for module, parts in sorted(groups.items()):
        weight = parts["oft_R.weight"]
        shape = (base_shapes or {}).get(f"{module}.weight")
        _refuse_layout("OFT", module, config, shape)
        block = (1 + math.isqrt(1 + 8 * int(weight.shape[1]))) // 2
        # Without the base's shape (block_share), the rotation spans what the blocks cover.
        in_features = int(shape[-1]) if shape is not None else block * int(weight.shape[0])
        rotation = oft_rotation(config, weight, in_features)
        updates.append(WeightUpdate(f"{module}.weight", "rotate", rotation))
    return updates


def boft_updates(
    config: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, torch.Tensor]],
    base_shapes: Mapping[str, torch.Size] | None = None,
) -> list[WeightUpdate]:
    updates = []
    for module, parts in sorted(groups.items()):
        shape = (base_shapes or {}).get(f"{module}.weight")
        _refuse_layout("BOFT", module, config, shape)
        weight, scale = parts["boft_R"], parts["boft_s"]
        covered = int(weight.shape[1]) * int(weight.shape[2])
        rotation = boft_rotation(weight, int(shape[-1]) if shape is not None else covered)
        updates.append(WeightUpdate(f"{module}.weight", "rotate", rotation, magnitude=scale))
    return updates
