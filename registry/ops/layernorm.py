"""LN tuning: trained copies of whole modules (normally layer norms) replacing the originals.

PEFT keeps a deep copy of each targeted module, trains it, and runs the copy instead of the
original; it saves every parameter of the copy as ``<module>.ln_tuning_layers.<parameter>``.
Replacing the module's own parameters with those values is therefore exactly PEFT's forward
and its merge (which swaps the copy in).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from registry.ops.updates import WeightUpdate

LN_LAYERS = "ln_tuning_layers"
LN_SUFFIXES = (f"{LN_LAYERS}.weight", f"{LN_LAYERS}.bias")


def ln_updates(module: str, parts: Mapping[str, torch.Tensor]) -> list[WeightUpdate]:
    return [
        WeightUpdate(f"{module}.{suffix.rsplit('.', 1)[-1]}", "replace", tensor)
        for suffix, tensor in sorted(parts.items())
    ]
