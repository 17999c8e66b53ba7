"""Property tests where the example tests stop: arbitrary input to the grammar, manifests
that arrive from outside, config validation and the JSON limits.

tests/test_refs.py and tests/test_manifest.py already hold the round trips of generated
references and manifests; these add what any input at all must never do.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from support.handmade import KINDS, adapter_files

from registry import schemas
from registry.errors import IntegrityError, InvalidNameError, NotFoundError
from registry.formats.config_file import (
    SET_LIKE_FIELDS,
    config_bytes,
    normalise_peft_config,
    parse_config,
)
from registry.formats.json_limits import MAX_JSON_DEPTH, json_problems
from registry.store.manifest import (
    BaseModelRef,
    FileEntry,
    Manifest,
    TrainingDataRef,
)
from registry.store.refs import (
    Candidate,
    Ref,
    normalize_version,
    parse_ref,
    parse_version,
    select_version,
    validate_alias,
)

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=15,
)

# -- the reference grammar --------------------------------------------------------------------

_versionish = st.text(alphabet="0123456789.!+-_abcdeilnoprstvABC ", max_size=20)


@PROPERTY
@given(st.one_of(st.text(max_size=24), _versionish))
def test_version_parsing_raises_only_invalid_name_error(text: str) -> None:
    try:
        normal = normalize_version(text)
    except InvalidNameError:
        return
    assert normalize_version(normal) == normal  # normal forms are fixed points
    assert parse_version(normal) == parse_version(text)


@PROPERTY
@given(st.text(max_size=70))
def test_alias_validation_raises_only_invalid_name_error(text: str) -> None:
    try:
        alias = validate_alias(text)
    except InvalidNameError:
        return
    assert parse_ref(f"x@{alias}") == Ref("x", "alias", alias)


@PROPERTY
@given(st.text(alphabet="abc@<>=!~,.*0123456789sha:/ \t", max_size=30))
def test_reference_soup_parses_or_says_why(text: str) -> None:
    # Dense in the grammar's own punctuation, where a parser is likeliest to slip.
    try:
        ref = parse_ref(text)
    except InvalidNameError as exc:
        assert str(exc)
        return
    assert parse_ref(str(ref)) == ref
    if ref.kind == "specifier":
        SpecifierSet(ref.value)  # what parsed stays usable
        assert isinstance(ref.pins_exactly, bool)


_candidates = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 5), st.booleans()),
    min_size=1,
    max_size=8,
    unique_by=lambda t: (t[0], t[1]),
).map(lambda items: [Candidate(f"{a}.{b}", yanked) for a, b, yanked in items])
_specifiers = st.sampled_from(
    [">=1", "<3", "==2.1", "!=1.0", "~=1.1", ">=0,<5", "==1.*", ">4", "===2.2", "<=0.0"]
)


@PROPERTY
@given(_candidates, _specifiers)
def test_specifier_selection_returns_a_match_or_not_found(pool: list[Candidate], spec: str) -> None:
    ref = parse_ref(f"x{spec}")
    try:
        chosen = select_version(ref, pool)
    except NotFoundError:
        usable = [c for c in pool if ref.pins_exactly or not c.yanked]
        assert not list(SpecifierSet(spec).filter(Version(c.version) for c in usable))
        return
    assert chosen in pool
    assert SpecifierSet(spec).contains(Version(chosen.version), prereleases=True)
    assert ref.pins_exactly or not chosen.yanked


# -- manifests from outside -------------------------------------------------------------------


def _valid_manifest_dict() -> dict[str, Any]:
    return Manifest(
        method="lora",
        source_format="peft",
        config={"peft_type": "LORA", "r": 4},
        files=(FileEntry("adapter_config.json", "ab" * 32, 10, "config"),),
        base_model=BaseModelRef("tiny/llama", "main"),
        training_data=(TrainingDataRef("cd" * 32, "file"),),
    ).to_dict()


_manifest_keys = st.sampled_from(
    [
        "method",
        "source_format",
        "config",
        "files",
        "base_model",
        "training_data",
        "lineage",
        "requires",
    ]
)


@PROPERTY
@given(_manifest_keys, json_values, st.booleans())
def test_a_damaged_manifest_is_an_integrity_error(key: str, value: Any, drop: bool) -> None:
    data = _valid_manifest_dict()
    if drop:
        data.pop(key)
    else:
        data[key] = value
    try:
        manifest = Manifest.from_dict(data)
    except IntegrityError as exc:
        assert str(exc)
        return
    # Whatever was accepted has a digest and survives its own round trip.
    try:
        raw = manifest.canonical_bytes()
    except ValueError:
        pytest.fail("an accepted manifest has no canonical bytes")
    again = Manifest.from_json(raw)
    assert again.canonical_bytes() == raw and again.digest == manifest.digest


@PROPERTY
@given(json_values)
def test_arbitrary_json_is_never_a_manifest_by_accident(value: Any) -> None:
    with pytest.raises(IntegrityError):
        Manifest.from_json(json.dumps(value))


@PROPERTY
@given(st.binary(max_size=200))
def test_manifest_bytes_raise_only_integrity_error(raw: bytes) -> None:
    with contextlib.suppress(IntegrityError):
        Manifest.from_json(raw)


def test_manifest_with_nan_from_outside_is_refused() -> None:
    text = json.dumps(_valid_manifest_dict()).replace('"r": 4', '"r": NaN')
    with pytest.raises(IntegrityError, match="NaN"):
        Manifest.from_json(text)


# -- config validation ------------------------------------------------------------------------


@PROPERTY
@given(json_values, st.sampled_from(schemas.available_schemas()))
def test_validate_never_raises_and_returns_sorted_lines(value: Any, name: str) -> None:
    problems = schemas.validate(value, name)
    assert problems == sorted(set(problems))
    assert all(isinstance(p, str) and p.startswith("$") and "\n" not in p for p in problems)


@PROPERTY
@given(
    st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.sampled_from(sorted(KINDS))
)
def test_validate_of_any_peft_shaped_config_never_raises(extra: dict[str, Any], kind: str) -> None:
    config = {**extra, **json.loads(adapter_files(kind)["adapter_config.json"])}
    hub = kind == "bottleneck" or kind.startswith("adapterhub")
    name = "adapterhub_config" if hub else "peft_config"
    assert schemas.validate(config, name) == []  # unknown keys are allowed


_module_lists = st.lists(
    st.sampled_from(["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"]), min_size=1
)  # PEFT finds nothing to adapt in []


@st.composite
def lora_configs(draw: st.DrawFn) -> dict[str, Any]:
    """LoRA configs the schema must accept: every known key with a value of its type."""
    config: dict[str, Any] = {
        "peft_type": "LORA",
        "r": draw(st.integers(1, 512)),
        "lora_alpha": draw(st.integers(1, 512) | st.floats(0.5, 512)),
        "target_modules": draw(_module_lists | st.just(".*proj") | st.none()),
        "lora_dropout": draw(st.floats(0, 1)),
        "bias": draw(st.sampled_from(["none", "all", "lora_only"])),
        "use_rslora": draw(st.booleans()),
        "use_dora": draw(st.booleans()),
        "fan_in_fan_out": draw(st.booleans()),
        "modules_to_save": draw(_module_lists | st.none()),
        "layers_to_transform": draw(st.lists(st.integers(0, 80)) | st.integers(0, 80) | st.none()),
        "rank_pattern": draw(st.dictionaries(st.text(max_size=8), st.integers(1, 64))),
        "alpha_pattern": draw(st.dictionaries(st.text(max_size=8), st.integers(1, 64))),
        "task_type": draw(st.sampled_from(["CAUSAL_LM", "SEQ_CLS", None])),
        "base_model_name_or_path": draw(st.text(max_size=20) | st.none()),
        "inference_mode": draw(st.booleans()),
    }
    for key in draw(st.sets(st.sampled_from(sorted(config)))):
        if key != "peft_type":
            del config[key]
    return config


@PROPERTY
@given(lora_configs())
def test_generated_valid_configs_have_no_problems(config: dict[str, Any]) -> None:
    assert schemas.validate(config, "peft_config") == []
    assert schemas.validate(normalise_peft_config(config), "peft_config") == []


@PROPERTY
@given(lora_configs(), _module_lists)
def test_normalised_configs_are_fixed_points_and_read_back(
    config: dict[str, Any], extra: list[str]
) -> None:
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = config["target_modules"] + extra  # duplicates, any order
    normal = normalise_peft_config(config)
    assert normalise_peft_config(normal) == normal
    for key in SET_LIKE_FIELDS:
        if isinstance(normal.get(key), list):
            assert normal[key] == sorted(set(normal[key]))
    parsed, problems = parse_config(config_bytes(normal))
    assert problems == [] and parsed == normal


@PROPERTY
@given(json_values)
def test_parse_config_of_any_json_never_raises(value: Any) -> None:
    document, problems = parse_config(json.dumps(value).encode())
    assert (document is None) == bool(problems)
    if document is not None:
        assert isinstance(document, dict)
        assert config_bytes(document)  # what is accepted can be stored


@PROPERTY
@given(st.integers(1, 3 * MAX_JSON_DEPTH), st.sampled_from(["[", '{"k":']))
def test_depth_limit_is_exact(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    value = json.loads(opener * depth + "1" + closer * depth) if depth < 900 else None
    assume(value is not None)
    problems = json_problems(value, "doc")
    assert bool(problems) == (depth > MAX_JSON_DEPTH)


@PROPERTY
@given(st.floats(allow_nan=False))
def test_every_float_a_config_accepts_can_be_stored(number: float) -> None:
    text = json.dumps({"peft_type": "LORA", "lora_alpha": number}, allow_nan=True)
    document, problems = parse_config(text.encode())
    if math.isinf(number):
        assert document is None and problems
    else:
        assert document is not None and config_bytes(document)
