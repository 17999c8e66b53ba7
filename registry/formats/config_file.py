"""adapter_config.json: parsing, recognising its format, and its canonical bytes.

PEFT writes the config as ``json.dumps(config, indent=2, sort_keys=True)`` with no trailing
newline; the AdapterHub library writes the same form. Set-valued PEFT fields pass through a
Python set, so their order differs between processes: they are sorted here so that equal
adapters get equal bytes.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from registry.formats.json_limits import (
    JsonLimitError,
    bounded_int,
    finite_float,
    json_problems,
    too_deep,
)

CONFIG_NAME = "adapter_config.json"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# The longest base model name or revision (the catalog's columns hold this many).
BASE_LABEL_MAX = 256

# Fields PEFT holds as sets (or whose order PEFT never uses): sorted and de-duplicated.
SET_LIKE_FIELDS: tuple[str, ...] = (
    "target_modules",
    "exclude_modules",
    "feedforward_modules",
    "modules_to_save",
)

# Top-level keys the AdapterHub library writes next to the nested architecture config.
_ADAPTERHUB_KEYS = ("model_class", "model_name", "model_type", "hidden_size", "version")


class _DuplicateKeyError(ValueError):
    pass


def parse_config(raw: bytes, name: str = CONFIG_NAME) -> tuple[dict[str, Any] | None, list[str]]:
    """The JSON object in ``raw``, or None and the reasons it cannot be used."""
    if len(raw) > MAX_CONFIG_BYTES:
        return None, [f"{name}: more than {MAX_CONFIG_BYTES} bytes, too large for a config"]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [f"{name}: not UTF-8 text (byte {exc.start})"]
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constants,
            parse_int=bounded_int,
            parse_float=finite_float,
        )
    except json.JSONDecodeError as exc:
        return None, [f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"]
    except _DuplicateKeyError as exc:
        return None, [f"{name}: key {exc} appears twice in one object"]
    except JsonLimitError as exc:
        return None, [f"{name}: {exc}"]
    except RecursionError:
        return None, [f"{name}: {too_deep()}"]
    except ValueError as exc:
        return None, [f"{name}: invalid JSON: {exc}"]
    limits = json_problems(value, name)
    if limits:
        return None, limits
    if not isinstance(value, dict):
        return None, [f"{name}: holds a JSON {_json_type(value)}, expected an object"]
    return value, []


def detect_format(config: dict[str, Any]) -> str | None:
    """``"peft"``, ``"adapterhub"``, or None when the config is neither."""
    if "peft_type" in config:
        return "peft"
    if isinstance(config.get("config"), dict) and any(k in config for k in _ADAPTERHUB_KEYS):
        return "adapterhub"
    return None


def normalise_peft_config(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with set-like lists sorted and de-duplicated, keys in sorted order."""
    out = copy.deepcopy(config)
    for key in SET_LIKE_FIELDS:
        value = out.get(key)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = sorted(set(value))
    return canonical_order(out)


def canonical_order(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` rebuilt from its canonical bytes, so every mapping iterates in sorted order."""
    result: dict[str, Any] = json.loads(config_bytes(config))
    return result


def config_bytes(config: dict[str, Any]) -> bytes:
    """The bytes PEFT's ``save_pretrained`` would write for ``config``."""
    return json.dumps(config, indent=2, sort_keys=True, allow_nan=False).encode("ascii")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(repr(key))
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    # json accepts NaN/Infinity, but they are not JSON and the manifest cannot hold them.
    raise ValueError(f"{name} is not a valid JSON value")


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
