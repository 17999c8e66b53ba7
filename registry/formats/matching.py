"""Which modules a PEFT config selects, with PEFT's own matching rules.

``target_modules`` as a list matches a module whose name equals an entry or ends with
``"." + entry``; as a string it is a regex that must match the whole name.
``layers_to_transform`` then keeps only modules in the listed layers. ``rank_pattern`` keys
match a name suffix as a regex. Configs are untrusted: a regex that does not compile matches
nothing here and is reported by ``regex_problems``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

ALL_LINEAR = "all-linear"


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return None


def _fullmatch(pattern: str, text: str) -> bool:
    compiled = _compile(pattern)
    return bool(compiled and compiled.fullmatch(text))


def _match(pattern: str, text: str) -> bool:
    compiled = _compile(pattern)
    return bool(compiled and compiled.match(text))


def _in_names(names: list[str], module: str) -> bool:
    return module in names or any(module.endswith("." + name) for name in names)


def regex_problems(config: Mapping[str, Any]) -> list[str]:
    """Config values PEFT uses as regexes that do not compile, as ``$.key: message`` lines."""
    problems = []
    for key in ("target_modules", "exclude_modules", "feedforward_modules"):
        value = config.get(key)
        if isinstance(value, str) and value != ALL_LINEAR and _compile(value) is None:
            problems.append(f"$.{key}: {value!r} is not a valid regular expression")
    for key in ("rank_pattern", "alpha_pattern"):
        value = config.get(key)
        if isinstance(value, dict):
            for pattern in value:
                if _compile(rf"(.*\.)?({pattern})$") is None:
                    problems.append(f"$.{key}: key {pattern!r} is not a valid regular expression")
    return problems


def targets_known(config: Mapping[str, Any]) -> bool:
    """Whether the config says which modules it targets (PEFT may fill defaults otherwise)."""
    value = config.get("target_modules")
    return bool(value) and value != ALL_LINEAR


def describe_targets(config: Mapping[str, Any]) -> str:
    value = config.get("target_modules")
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value[:8]) + (", ..." if len(value) > 8 else "")
        text = f"target_modules [{shown}]"
    else:
        text = f"target_modules {value!r}"
    layers = config.get("layers_to_transform")
    if layers not in (None, []):
        text += f" with layers_to_transform {layers!r}"
    return text


def is_targeted(config: Mapping[str, Any], module: str) -> bool:
    """Whether PEFT would put an adapter layer on ``module`` under ``config``."""
    excluded = config.get("exclude_modules")
    if isinstance(excluded, str) and _fullmatch(excluded, module):
        return False
    if isinstance(excluded, list) and _in_names(excluded, module):
        return False
    targets = config.get("target_modules")
    if targets is None or targets == ALL_LINEAR:
        return True
    if isinstance(targets, str):
        return _fullmatch(targets, module)
    if module in targets:
        return True
    if not any(module.endswith("." + t) for t in targets):
        return False
    return _in_selected_layer(config, module)


def _in_selected_layer(config: Mapping[str, Any], module: str) -> bool:
    indexes = config.get("layers_to_transform")
    if indexes is None or indexes == []:
        return True
    patterns = config.get("layers_pattern")
    # The first numbered path segment is the layer index (not e.g. an expert index after it).
    if not patterns:
        found = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", module)
    else:
        found = None
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            compiled = _compile(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.")
            found = compiled.match(module) if compiled else None
            if found:
                break
    if found is None:
        return False
    index = int(found.group("idx"))
    return index == indexes if isinstance(indexes, int) else index in indexes


def pattern_value(patterns: Mapping[str, Any] | None, module: str) -> tuple[str, Any] | None:
    """The first ``(key, value)`` of ``rank_pattern``/``alpha_pattern`` matching ``module``."""
    for key, value in (patterns or {}).items():
        if _match(rf"(.*\.)?({key})$", module):
            return key, value
    return None


def is_feedforward(config: Mapping[str, Any], module: str) -> bool:
    """IA3: whether ``module`` is a feed-forward target (PEFT matches a plain suffix here)."""
    value = config.get("feedforward_modules")
    if isinstance(value, str):
        return _fullmatch(value, module)
    if isinstance(value, list):
        return any(module.endswith(name) for name in value)
    return False


def in_modules_to_save(config: Mapping[str, Any], key: str) -> bool:
    """Whether tensor ``key`` (module path + parameter) lies inside a ``modules_to_save`` module."""
    names = config.get("modules_to_save") or []
    parts = key.split(".")[:-1]  # the module path, without the parameter name
    for name in names:
        wanted = name.split(".")
        for start in range(len(parts) - len(wanted) + 1):
            if parts[start : start + len(wanted)] == wanted:
                return True
        # PEFT reads each entry as a regex; honour entries written that way too.
        if _match(rf"(^|.*\.){name}\..+", key):
            return True
    return False


def trainable_token_count(config: Mapping[str, Any], module: str) -> int | None:
    """How many tokens ``trainable_token_indices`` makes trainable on ``module``, if known."""
    value = config.get("trainable_token_indices")
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        for name, indexes in value.items():
            if (module == name or module.endswith("." + name)) and isinstance(indexes, list):
                return len(indexes)
    return None
