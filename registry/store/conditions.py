"""Eval names and the condition grammar used by ``list --where`` and promotion gates.

    METRIC OP VALUE            accuracy>=0.9
    METRIC@DATASET OP VALUE    accuracy@gsm8k>=0.93

OP is one of ``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=``. A condition compares the
latest recorded eval of METRIC (on DATASET when given; on any dataset otherwise),
"latest" meaning the one recorded last. A version without such an eval never
satisfies a condition, whatever the operator.

Metric and dataset names may not contain whitespace or any of ``@<>=!,``: those
characters delimit the grammar, so a name using them could never be queried.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from registry.errors import ArgumentError, InvalidNameError
from registry.store.results import EvalScore

METRIC_MAX = 128
DATASET_MAX = 256
SPLIT_MAX = 64
NOTES_MAX = 4096
_FORBIDDEN = set("@<>=!,")

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION = re.compile(
    r"^\s*(?P<metric>[^\s@<>=!,]+)(?:@(?P<dataset>[^\s<>=!,]*))?\s*"
    r"(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>\S+)\s*$"
)


def _check_label(text: str, what: str, limit: int) -> str:
    if not text:
        raise InvalidNameError(f"{what} name is empty")
    if len(text) > limit:
        raise InvalidNameError(f"{what} name {text[:40]!r}... is longer than {limit} characters")
    bad = sorted({c for c in text if c.isspace() or c in _FORBIDDEN or not c.isprintable()})
    if bad:
        shown = "".join(bad).replace("\n", "\\n").replace("\t", "\\t")
        hint = " (e.g. pass_at_1 for pass@1)" if "@" in bad and what == "metric" else ""
        raise InvalidNameError(
            f"invalid {what} name {text!r}: it may not contain whitespace or any of "
            f"'@<>=!,' (found {shown!r}){hint}"
        )
    return text


def validate_metric(name: str) -> str:
    return _check_label(name, "metric", METRIC_MAX)


def validate_dataset(name: str) -> str:
    """An empty dataset means "not given"; anything else must be a usable name."""
    return name if name == "" else _check_label(name, "dataset", DATASET_MAX)


def validate_split(name: str) -> str:
    return name if name == "" else _check_label(name, "split", SPLIT_MAX)


def validate_notes(text: str) -> str:
    if len(text) > NOTES_MAX:
        raise ArgumentError(f"eval notes are {len(text)} characters long; at most {NOTES_MAX}")
    # Lines and tabs only: PostgreSQL cannot store a NUL, and other control characters
    # are refused in every free-text field (descriptions, notes of alias moves, reasons).
    if any(not (c.isprintable() or c in "\n\t") for c in text):
        raise ArgumentError("eval notes may not contain control characters; remove them")
    return text


def validate_score(metric: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentError(f"eval {metric} is not a number: {value!r}")
    if not math.isfinite(value):
        raise ArgumentError(f"eval {metric} is not a finite number: {value!r}")
    return float(value)


@dataclass(frozen=True)
class Condition:
    """``metric[@dataset] op value``; ``split`` only comes from a policy file."""

    metric: str
    op: str
    value: float
    dataset: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ArgumentError(f"unknown operator {self.op!r}; use one of {list(OPERATORS)}")

    @property
    def subject(self) -> str:
        text = self.metric + (f"@{self.dataset}" if self.dataset else "")
        return text + (f" (split {self.split})" if self.split else "")

    def __str__(self) -> str:
        return f"{self.subject}{self.op}{self.value:g}"

    def holds(self, actual: float | None) -> bool:
        return actual is not None and OPERATORS[self.op](actual, self.value)

    def latest(self, evals: Iterable[EvalScore]) -> EvalScore | None:
        """The eval this condition compares: the last recorded one that matches."""
        found = None
        for score in evals:  # ordered oldest first, as the catalog returns them
            if score.metric != self.metric:
                continue
            if self.dataset is not None and score.dataset != self.dataset:
                continue
            if self.split is not None and score.split != self.split:
                continue
            found = score
        return found


def parse_condition(text: str) -> Condition:
    """Parse ``METRIC[@DATASET] OP VALUE``; raise ``ArgumentError`` naming the problem
    (``InvalidNameError`` for a metric or dataset name that breaks its grammar)."""
    match = _CONDITION.match(text)
    if not match:
        raise ArgumentError(
            f"invalid condition {text!r}: expected METRIC[@DATASET] OP VALUE with OP one of "
            ">=, >, <=, <, ==, != (e.g. 'accuracy@gsm8k>=0.9')"
        )
    metric = validate_metric(match["metric"])
    dataset = match["dataset"]
    if dataset is not None:
        if not dataset:
            raise ArgumentError(f"invalid condition {text!r}: nothing after '@'")
        validate_dataset(dataset)
    try:
        value = float(match["value"])
    except ValueError:
        raise ArgumentError(
            f"invalid condition {text!r}: {match['value']!r} is not a number"
        ) from None
    if not math.isfinite(value):
        raise ArgumentError(f"invalid condition {text!r}: the value must be finite")
    return Condition(metric, match["op"], value, dataset)
