"""Binding of an adapter whose method the registry does not model: by module path only.

For a type stored with analysis "structural" or "opaque" the registry cannot say which base
parameter each tensor changes or what shape it needs, but PEFT's key grammar still says where
each tensor lives: ``base_model.model.<module path>.<adapter tensor name>``, the tensor name
being one to four segments (``oft_R.weight``, ``shadow_update_gate.default.0.bias``). Each
such key must name a module of the base within those last segments; an adapter made for
another architecture, or for a deeper model, names modules the base does not have. Keys
outside ``base_model.model.`` (prompt embeddings, tensors shared by all layers) bind to no
module and are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PREFIX = "base_model.model."
_TENSOR_SEGMENTS = 4  # the most segments an adapter's own tensor name takes after its module


@dataclass(frozen=True)
class ModuleBinding:
    modules: tuple[str, ...]  # base modules the adapter's keys were found under
    unbound: tuple[str, ...]  # keys that name no module of the base

    @property
    def considered(self) -> int:
        return len(self.modules) + len(self.unbound)


def _modules(base_names: Iterable[str]) -> frozenset[str]:
    """Every module path of the base (``a`` and ``a.b`` for ``a.b.weight``)."""
    found: set[str] = set()
    for name in base_names:
        parts = name.split(".")
        found.update(".".join(parts[:end]) for end in range(1, len(parts)))
    return frozenset(found)


def bind_modules(keys: Iterable[str], base: Mapping[str, object]) -> ModuleBinding:
    """Match each ``base_model.model.`` key of the adapter to the longest base module it names."""
    owners = _modules(base)
    modules: set[str] = set()
    unbound: list[str] = []
    for key in sorted(keys):
        if not key.startswith(PREFIX):
            continue
        parts = key[len(PREFIX) :].split(".")
        found = next(
            (
                ".".join(parts[:end])
                for end in range(len(parts) - 1, max(len(parts) - 1 - _TENSOR_SEGMENTS, 0), -1)
                if ".".join(parts[:end]) in owners
            ),
            None,
        )
        if found is None:
            unbound.append(key)
        else:
            modules.add(found)
    return ModuleBinding(tuple(sorted(modules)), tuple(unbound))
