"""Parsers for repeated KEY=VALUE style options."""

from __future__ import annotations

import math
from collections.abc import Iterable

import click


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        pairs[key.strip()] = value.strip()
    return pairs


def parse_scores(values: Iterable[str], option: str = "--eval") -> dict[str, float]:
    scores: dict[str, float] = {}
    for key, text in parse_pairs(values, option).items():
        try:
            value = float(text)
        except ValueError:
            raise click.BadParameter(
                f"{key}={text!r}: the value must be a number", param_hint=option
            ) from None
        if not math.isfinite(value):
            raise click.BadParameter(f"{key}={text}: the value must be finite", param_hint=option)
        scores[key] = value
    return scores
