"""Promotion gates: what must hold before an alias may point at a version.

Requirements come from ``policy.json`` in the registry home (validated by
``schemas/policy.schema.json``) and from ``--require`` on the command line:

    {"version": 1, "rules": [
      {"alias": "prod",
       "evals": [{"metric": "accuracy", "dataset": "gsm8k", "min": 0.93}],
       "verify": true, "base_fingerprint": true, "require_signature": true}],
     "load": {"require_signature": true}}

Every rule whose ``alias`` glob matches the alias and whose ``adapters`` globs (if
any) match the adapter name applies. A policy file that is present but invalid
refuses every gated alias move: failing open would make the policy decorative.
``require_signature`` asks for a valid signature by a trusted key
(``registry/security/signing.py``);
``load.require_signature`` makes ``Registry.load`` refuse versions without one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from registry.check import Check
from registry.errors import (
    ArgumentError,
    GateError,
    InvalidNameError,
    RegistryError,
    ValidationError,
)
from registry.lifecycle.results import GateReport
from registry.store.conditions import Condition, parse_condition
from registry.store.results import EvalScore, VerifyReport, iso_utc

POLICY_FILE = "policy.json"
VERIFY_WORDS = ("verify",)
FINGERPRINT_WORDS = ("base-fingerprint", "base_fingerprint", "fingerprint")
SIGNATURE_WORDS = ("signature", "signed", "require-signature", "require_signature")


@dataclass(frozen=True)
class Requirement:
    """One gate: an eval condition, ``verify``, ``base_fingerprint`` or ``signature``."""

    kind: str  # "eval" | "verify" | "base_fingerprint" | "signature"
    source: str  # where it was asked for: "policy.json rules[0]", "--require"
    condition: Condition | None = None

    @property
    def text(self) -> str:
        if self.condition is not None:
            return str(self.condition)
        return {"verify": "verify", "signature": "signature"}.get(self.kind, "base-fingerprint")


@dataclass(frozen=True)
class Rule:
    alias: str
    adapters: tuple[str, ...]
    requirements: tuple[Requirement, ...]

    def applies(self, name: str, alias: str) -> bool:
        if not fnmatchcase(alias, self.alias):
            return False
        return not self.adapters or any(fnmatchcase(name, glob) for glob in self.adapters)


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    path: Path | None = None  # None: no policy file
    load_requires_signature: bool = False  # "load": {"require_signature": true}

    def requirements(self, name: str, alias: str) -> list[Requirement]:
        found: list[Requirement] = []
        for rule in self.rules:
            if rule.applies(name, alias):
                found.extend(rule.requirements)
        return found


def load_policy(home_root: Path) -> Policy:
    """The policy of a registry home; an empty one when there is no policy file."""
    path = home_root / POLICY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Policy()
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read the policy file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            str(path), [f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
        ) from None
    problems = policy_problems(data)
    if problems:
        raise ValidationError(str(path), problems)
    load = data.get("load") or {}
    return Policy(
        tuple(_rule(i, raw) for i, raw in enumerate(data["rules"])),
        path,
        load_requires_signature=bool(load.get("require_signature")),
    )


def policy_problems(data: Any) -> list[str]:
    """Every problem of a policy document: schemas/policy.schema.json, then what a schema
    cannot say (a min above its max); empty when it is valid."""
    import schemas  # jsonschema is slow to import; only a policy document needs it

    return schemas.validate(data, "policy") or _semantic_problems(data)


def _semantic_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    for i, rule in enumerate(data["rules"]):
        for j, ev in enumerate(rule.get("evals", ())):
            if "min" in ev and "max" in ev and ev["min"] > ev["max"]:
                problems.append(
                    f"$.rules[{i}].evals[{j}]: min {ev['min']} is above max {ev['max']}"
                )
    return problems


def _rule(index: int, raw: dict[str, Any]) -> Rule:
    source = f"{POLICY_FILE} rules[{index}]"
    requirements: list[Requirement] = []
    for ev in raw.get("evals", ()):
        for op, key in ((">=", "min"), ("<=", "max")):
            if key in ev:
                condition = Condition(
                    ev["metric"], op, float(ev[key]), ev.get("dataset"), ev.get("split")
                )
                requirements.append(Requirement("eval", source, condition))
    if raw.get("verify"):
        requirements.append(Requirement("verify", source))
    if raw.get("base_fingerprint"):
        requirements.append(Requirement("base_fingerprint", source))
    if raw.get("require_signature"):
        requirements.append(Requirement("signature", source))
    return Rule(raw["alias"], tuple(raw.get("adapters", ())), tuple(requirements))


def parse_requirement(text: str) -> Requirement:
    """``--require`` values: a condition (``accuracy@gsm8k>=0.93``), ``verify`` or
    ``base-fingerprint``."""
    word = text.strip().lower()
    if word in VERIFY_WORDS:
        return Requirement("verify", "--require")
    if word in FINGERPRINT_WORDS:
        return Requirement("base_fingerprint", "--require")
    if word in SIGNATURE_WORDS:
        return Requirement("signature", "--require")
    try:
        return Requirement("eval", "--require", parse_condition(text))
    except (InvalidNameError, ArgumentError) as exc:
        raise type(exc)(
            f"{exc}; --require also accepts 'verify', 'base-fingerprint' and 'signature'"
        ) from None


@dataclass
class GateInputs:
    """What the gates look at; ``verify`` is only called when a rule asks for it."""

    evals: Sequence[EvalScore]
    base_fingerprint: str | None
    verify: Callable[[], VerifyReport] | None = None
    verified: list[Check] = field(default_factory=list)  # cache across evaluations
    # Names of the trusted keys that validly signed the version; None: it cannot be signed yet.
    signers: Callable[[], list[str]] | None = None
    signed: list[list[str]] = field(default_factory=list)  # cache across evaluations


def evaluate(
    requirements: Iterable[Requirement], inputs: GateInputs, *, ref: str, alias: str
) -> GateReport:
    checks: list[Check] = []
    seen: set[tuple[str, str]] = set()
    for req in requirements:
        if (req.kind, req.text) in seen:
            continue
        seen.add((req.kind, req.text))
        checks.append(_check(req, inputs))
    return GateReport(ref=ref, alias=alias, checks=tuple(checks))


def _check(req: Requirement, inputs: GateInputs) -> Check:
    where = f"required by {req.source}"
    if req.kind == "eval":
        assert req.condition is not None
        latest = req.condition.latest(inputs.evals)
        if latest is None:
            return Check(req.text, "fail", f"no {req.condition.subject} eval recorded; {where}")
        return Check(
            req.text,
            "pass" if req.condition.holds(latest.value) else "fail",
            f"latest {latest.value:g} recorded {iso_utc(latest.recorded_at)}; {where}",
        )
    if req.kind == "base_fingerprint":
        if inputs.base_fingerprint:
            return Check(req.text, "pass", f"{inputs.base_fingerprint[:23]}...; {where}")
        return Check(
            req.text,
            "fail",
            f"no base model fingerprint recorded (push with the base weights); {where}",
        )
    if req.kind == "signature":
        return _signature_check(req, inputs, where)
    if inputs.verify is None:
        return Check(req.text, "pass", f"stored files were hashed and validated; {where}")
    if not inputs.verified:
        report = inputs.verify()
        failures = "; ".join(f"{c.name}: {c.detail}" for c in report.failures)
        inputs.verified.append(
            Check(req.text, "pass", f"every check passed; {where}")
            if report.ok
            else Check(req.text, "fail", f"{failures}; {where}")
        )
    return inputs.verified[0]


def _signature_check(req: Requirement, inputs: GateInputs, where: str) -> Check:
    if inputs.signers is None:
        return Check(
            req.text,
            "fail",
            f"a version being pushed has no signature yet: push it, sign it with "
            f"`adapters sign`, then move the alias; {where}",
        )
    if not inputs.signed:
        inputs.signed.append(inputs.signers())
    signers = inputs.signed[0]
    if signers:
        return Check(req.text, "pass", f"signed by trusted key {', '.join(signers)}; {where}")
    return Check(
        req.text,
        "fail",
        f"no valid signature by a trusted key (see `adapters verify`); {where}",
    )


def enforce(report: GateReport, target: str) -> None:
    """Raise ``GateError`` naming every unmet requirement."""
    if report.ok:
        return
    unmet = [f"{c.name} not met ({c.detail})" for c in report.unmet]
    raise GateError(
        f"{report.ref} cannot become {target}: " + "; ".join(unmet),
        [c.name for c in report.unmet],
    )
