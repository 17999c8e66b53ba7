"""Parsers for repeated KEY=VALUE style options."""

from __future__ import annotations

import math
import re
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


def parse_requirements(values: Iterable[str], option: str = "--requires") -> dict[str, str]:
    """'peft>=0.14' -> {'peft': '>=0.14'}; the specifier is checked by the library."""
    found: dict[str, str] = {}
    for item in values:
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*([<>=!~].*)$", item)
        if not match:
            raise click.BadParameter(
                f"expected PACKAGE<SPECIFIER> such as 'peft>=0.14', got {item!r}",
                param_hint=option,
            )
        found[match.group(1)] = match.group(2).strip()
    return found
