"""Compatibility of an adapter version with a base model -> ``CompatReport``.

Each check passes, warns or fails with a sentence. A fail means the adapter must
not be applied to that base: the loader refuses it with ``BaseModelMismatchError``.

    method        the method is supported, and how it will be applied
    binding       every adapter tensor binds to a base parameter of the right shape
    weights       the base weights are the ones the adapter was trained on
                  (equal, equal up to a dtype cast, related by a recorded relation)
    quantization  the quantization trained on vs the one loaded on
    dimensions    hidden size and layer count, for prompt and prefix tuning
    requires      package version specifiers recorded with the adapter
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from registry.bases.binding import MODULE_METHODS, requirements
from registry.bases.checkpoint_names import CheckpointLayout, layout_of_config
from registry.bases.comparison import compare
from registry.bases.module_binding import bind_modules
from registry.bases.target import BaseTarget
from registry.check import Check, CheckStatus
from registry.formats import FOREIGN_METHODS, METHODS
from registry.formats.tied_weights import tied_embedding

if TYPE_CHECKING:
    from registry.bases.fingerprint import Fingerprint
    from registry.store.results import AdapterVersion, BaseModelRecord

NATIVE_METHODS = ("lora", "ia3", "loha", "lokr", "oft", "boft", "trainable_tokens", "ln_tuning")
PROMPT_METHODS = ("prompt_tuning", "p_tuning", "prefix_tuning")
_SHOWN = 5


@dataclass(frozen=True)
class CompatReport:
    adapter: str
    base: str
    checks: tuple[Check, ...]
    coverage: float | None = None  # share of required base parameters that bind
    unbound: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    @property
    def warnings(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "warn")

    def summary(self) -> str:
        if self.ok:
            return f"{self.adapter} fits {self.base}"
        problems = "; ".join(f"{c.name}: {c.detail}" for c in self.failures)
        return f"{self.adapter} does not fit {self.base}: {problems}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "adapter": self.adapter,
            "base": self.base,
            "ok": self.ok,
            "coverage": self.coverage,
            "unbound": list(self.unbound),
            "checks": [vars(c).copy() for c in self.checks],
        }


def _method_check(method: str, analysis: str = "full") -> Check:
    if method in FOREIGN_METHODS:
        # Another library's format: the registry stores and checks it, but applying it here
        # would not be what that library does.
        return Check(
            "method", "fail", f"{method} adapters load with {FOREIGN_METHODS[method]}, not here"
        )
    if method in NATIVE_METHODS:
        return Check("method", "pass", f"{method}: applied natively by merging deltas in place")
    if analysis != "full":
        return _peft_only_check(method, analysis)
    if method not in METHODS:
        return Check("method", "fail", f"{method} adapters are not supported")
    missing = _without_peft(method, "through")
    return missing or Check("method", "pass", f"{method}: loaded through the peft library")


def _without_peft(method: str, how: str) -> Check | None:
    """The failed check when the peft library, which ``method`` loads ``how`` (through,
    only through), is not installed; None when it is."""
    try:
        importlib.metadata.version("peft")
    except importlib.metadata.PackageNotFoundError:
        return Check(
            "method",
            "fail",
            f"{method} adapters load {how} the peft library, which is not installed "
            "(pip install 'adapter-registry[peft]')",
        )
    return None


def _peft_only_check(method: str, analysis: str) -> Check:
    missing = _without_peft(method, "only through")
    return missing or Check(
        "method",
        "pass",
        f"{method} ({analysis} analysis): loaded through the peft library (mode='peft'); "
        "not applied natively",
    )


def _module_binding_check(
    version: AdapterVersion,
    shapes: Mapping[str, tuple[int, ...]],
    target: BaseTarget,
) -> tuple[Check, float | None, tuple[str, ...]]:
    found = bind_modules(shapes, target.fingerprint.tensors)
    names = _CheckpointNames(target)
    if found.unbound and names.layout is not None:
        # An adapter trained on the live model names modules as transformers 5 renamed them.
        live = names.live_names
        found = bind_modules(shapes, dict.fromkeys([*target.fingerprint.tensors, *live]))
    if not found.considered:
        return Check("binding", "pass", f"{version.method} binds to no base module"), None, ()
    coverage = 1 - len(found.unbound) / found.considered
    if not found.unbound:
        detail = (
            f"every adapter tensor lies in one of {len(found.modules)} base modules "
            f"(coverage 100%; shapes are not modelled for {version.method})"
        )
        return Check("binding", "pass", detail), 1.0, ()
    listed = ", ".join(found.unbound[:_SHOWN]) + (
        f" and {len(found.unbound) - _SHOWN} more" if len(found.unbound) > _SHOWN else ""
    )
    detail = (
        f"coverage {coverage:.0%}: {len(found.unbound)} of {found.considered} adapter tensors "
        f"name no module of this base: {listed}"
    )
    return Check("binding", "fail", detail), coverage, found.unbound


def _binding_check(
    version: AdapterVersion,
    shapes: Mapping[str, tuple[int, ...]],
    target: BaseTarget,
) -> tuple[Check, float | None, tuple[str, ...]]:
    if version.manifest.analysis != "full":
        return _module_binding_check(version, shapes, target)
    if version.method not in MODULE_METHODS:
        return Check("binding", "pass", f"{version.method} binds to no base module"), None, ()
    needed = requirements(version.method, version.manifest.config, shapes)
    if not needed:
        return Check("binding", "fail", "the adapter has no tensors to bind"), 0.0, ()
    base = target.fingerprint.tensors
    names = _CheckpointNames(target)
    unbound: list[str] = []
    for req in needed:
        found = base.get(req.parameter) or base.get(names.saved_name(req.parameter) or "")
        if found is None:
            alias = tied_embedding(req.parameter, base, target.config)
            found = base.get(alias) if alias is not None else None
        unshaped = req.dims is None and req.numel is None
        if found is None and unshaped and req.parameter in names.live_names:
            continue  # a live parameter fused from saved ones: existence is all it needs
        if found is None:
            unbound.append(f"{req.module} (no parameter {req.parameter} in the base)")
        elif not req.accepts(tuple(found.shape)):
            shape = "[" + ", ".join(str(d) for d in found.shape) + "]"
            unbound.append(f"{req.module} (needs {req.describe()}, base has {shape})")
    coverage = 1 - len(unbound) / len(needed)
    if not unbound:
        return (
            Check("binding", "pass", f"all {len(needed)} adapted parameters bind (coverage 100%)"),
            1.0,
            (),
        )
    listed = ", ".join(unbound[:_SHOWN]) + (
        f" and {len(unbound) - _SHOWN} more" if len(unbound) > _SHOWN else ""
    )
    detail = (
        f"coverage {coverage:.0%}: {len(unbound)} of {len(needed)} adapted parameters do not "
        f"bind: {listed}"
    )
    return Check("binding", "fail", detail), coverage, tuple(unbound)


class _CheckpointNames:
    """The base's tensor names as transformers 5 has them live and as its checkpoint saves
    them (it renames some modules and fuses others on load), read on first use only: the
    layout imports transformers."""

    def __init__(self, target: BaseTarget) -> None:
        self._target = target

    @functools.cached_property
    def layout(self) -> CheckpointLayout | None:
        return layout_of_config(self._target.config)

    def saved_name(self, live: str) -> str | None:
        """Live parameter name -> its checkpoint name (None: not renamed, or fused)."""
        return self.layout.saved_name(live) if self.layout is not None else None

    @functools.cached_property
    def live_names(self) -> frozenset[str]:
        """The live tensors the checkpoint's tensors load into (fused ones included)."""
        layout, saved = self.layout, self._target.fingerprint.tensors
        return frozenset(layout.live_name(n) for n in saved) if layout is not None else frozenset()


def _weights_check(
    version: AdapterVersion,
    trained_on: BaseModelRecord | None,
    target: BaseTarget,
    related: Mapping[str, str],
    allow_unverified_base: bool,
) -> Check:
    recorded = version.base_model.fingerprint
    if recorded is None and trained_on is not None:
        # Recorded after the push under the name the adapter gives (`adapters base add`).
        recorded = trained_on.content_digest
    found = target.fingerprint
    if recorded is None:
        return Check(
            "weights",
            "warn" if allow_unverified_base else "fail",
            unverified_base_message(version),
        )
    expected = trained_on.fingerprint if trained_on is not None else None
    if recorded == found.content:
        return _same_samples_check(recorded, expected, found)
    relation = related.get(found.content)
    if relation is not None:
        status: CheckStatus = "warn" if relation == "quantized-from" else "pass"
        return Check(
            "weights",
            status,
            f"other weights, related to the ones trained on by a recorded relation ({relation})",
        )
    if expected is None:
        return Check(
            "weights",
            "fail",
            f"the base weights ({found.content[:19]}...) are not the ones the adapter was "
            f"trained on ({recorded[:19]}...), and no samples were recorded to tell a dtype "
            "cast from other weights",
        )
    result = compare(expected, found)
    if result.verdict == "cast":
        casts = ", ".join(f"{a} -> {b}" for a, b in result.dtype_changes)
        return Check(
            "weights",
            "warn",
            f"the weights trained on, cast to another dtype ({casts}); outputs differ only by "
            "rounding",
        )
    if result.verdict == "structure-mismatch":
        return Check("weights", "fail", f"a different model: {result.summary}")
    trained_label = trained_on.ref if trained_on is not None else recorded[:19]
    return Check(
        "weights",
        "fail",
        f"same shapes but not the weights trained on ({trained_label}): {result.summary}",
    )


_UNVERIFIED = "unverified base"


def is_unverified(check: Check) -> bool:
    """Whether ``check`` is the weights check of a version whose base has no fingerprint."""
    return check.name.endswith("weights") and check.detail.startswith(_UNVERIFIED)


def unverified_base_message(version: AdapterVersion) -> str:
    """Why a version without a recorded base fingerprint cannot be checked, and the fix."""
    base = version.base_model
    ref = f"{base.name}@{base.revision}" if base.revision else f"{base.name}"
    return (
        f"{_UNVERIFIED}: the base weights {version.ref} was trained on ({ref}) were never "
        "fingerprinted, "
        "so other weights of the same shapes would pass; record them with "
        f"`adapters base add DIR_OR_HUB_ID --name {ref}` (new pushes: "
        "`adapters push --base-path DIR`), or accept an unverified base explicitly "
        "(--allow-unverified-base, allow_unverified_base=True)"
    )


def _same_samples_check(recorded: str, expected: Fingerprint | None, found: Fingerprint) -> Check:
    """Equal sampled content: identical, unless full-content digests on both sides differ."""
    label = f"{recorded[:19]}..."
    if expected is None or not expected.digests or not found.digests:
        hint = ""
        if found.digests:
            hint = (
                "; only sampled values could be compared, the base trained on was recorded "
                "without full digests (`adapters base add --exhaustive` records them)"
            )
        return Check("weights", "pass", f"identical to the weights trained on ({label}){hint}")
    result = compare(expected, found)
    if result.verdict == "identical":
        return Check(
            "weights",
            "pass",
            f"identical to the weights trained on ({label}); {len(result.compared)} tensors "
            "compared in full",
        )
    return Check("weights", "fail", f"not the weights trained on: {result.summary}")


def _quantization_check(trained_on: BaseModelRecord | None, target: BaseTarget) -> Check:
    if trained_on is None:
        return Check("quantization", "pass", f"loading onto {target.quantization} weights")
    trained = trained_on.quantization or "none"
    if trained == target.quantization:
        return Check("quantization", "pass", f"trained on and loading onto {trained} weights")
    if trained != "none" and target.quantization == "none":
        return Check(
            "quantization",
            "warn",
            f"trained on {trained}-quantized weights (QLoRA) and loading onto unquantized ones: "
            "outputs will differ from what was evaluated",
        )
    return Check(
        "quantization",
        "warn",
        f"trained on {trained} weights, loading onto {target.quantization} ones",
    )


def _dimension_check(version: AdapterVersion, target: BaseTarget) -> Check | None:
    if version.method not in PROMPT_METHODS:
        return None
    config, base = version.manifest.config, target.config
    hidden = base.get("hidden_size") or base.get("n_embd") or base.get("d_model")
    layers = base.get("num_hidden_layers") or base.get("n_layer") or base.get("num_layers")
    problems = []
    token_dim = config.get("token_dim")
    if hidden and token_dim:
        allowed = {int(hidden)}
        heads = base.get("num_attention_heads")
        kv_heads = base.get("num_key_value_heads")
        if version.method == "prefix_tuning" and heads and kv_heads:
            allowed.add(int(hidden) // int(heads) * int(kv_heads))
        if int(token_dim) not in allowed:
            problems.append(f"token_dim {token_dim} but the base's hidden size is {hidden}")
    prefix_layers = config.get("num_layers") if version.method == "prefix_tuning" else None
    if layers and prefix_layers and int(prefix_layers) != int(layers):
        problems.append(f"num_layers {prefix_layers} but the base has {layers}")
    if not hidden:
        return Check("dimensions", "warn", "the base's config does not say its hidden size")
    if problems:
        return Check("dimensions", "fail", "; ".join(problems))
    return Check("dimensions", "pass", f"token_dim matches the base (hidden size {hidden})")


def _requires_check(requires: Mapping[str, str]) -> Check | None:
    if not requires:
        return None
    problems = []
    for package, spec in sorted(requires.items()):
        try:
            wanted = SpecifierSet(spec)
        except InvalidSpecifier:
            problems.append(f"{package}{spec}: not a valid specifier")
            continue
        try:
            have = Version(importlib.metadata.version(package))
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{package}{spec} required, not installed")
            continue
        except InvalidVersion:
            problems.append(f"{package}: installed version is not PEP 440")
            continue
        if have not in wanted:
            problems.append(f"{package}{spec} required, {have} installed")
    if problems:
        return Check("requires", "fail", "; ".join(problems))
    listed = ", ".join(f"{p}{s}" for p, s in sorted(requires.items()))
    return Check("requires", "pass", f"installed packages satisfy {listed}")


def check(
    version: AdapterVersion,
    adapter_shapes: Mapping[str, tuple[int, ...]],
    target: BaseTarget,
    *,
    trained_on: BaseModelRecord | None = None,
    related: Mapping[str, str] | None = None,
    requires: Mapping[str, str] | None = None,
    allow_unverified_base: bool = False,
) -> CompatReport:
    """All compatibility checks of ``version`` against ``target``.

    ``adapter_shapes`` are the adapter's tensor shapes (from its safetensors header);
    ``trained_on`` is the catalog's record of the base it was trained on (with samples);
    ``related`` maps content digests related to that base to the relation's name. With no
    fingerprint of the base trained on (neither in the manifest nor in ``trained_on``) the
    weights check fails, or warns when ``allow_unverified_base``.
    """
    checks: list[Check] = [_method_check(version.method, version.manifest.analysis)]
    binding, coverage, unbound = _binding_check(version, adapter_shapes, target)
    checks.append(binding)
    checks.append(_weights_check(version, trained_on, target, related or {}, allow_unverified_base))
    checks.append(_quantization_check(trained_on, target))
    for extra in (_dimension_check(version, target), _requires_check(requires or {})):
        if extra is not None:
            checks.append(extra)
    return CompatReport(version.ref, target.label, tuple(checks), coverage, unbound)


def failure_message(report: CompatReport, hints: Sequence[str]) -> str:
    if not hints:
        return f"refusing to load: {report.summary()}"
    return f"refusing to load: {report.summary()}. To proceed: " + "; or ".join(hints)
