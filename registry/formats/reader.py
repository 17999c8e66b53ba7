"""Reading an adapter (a directory, or stored files) into a checked ``AdapterSource``.

Structural failures (no such directory, no config, no weights) raise ``FormatError``; unsafe
input (pickle weights, escaping symlinks) raises ``UnsafeFormatError``; everything wrong with
the content - config JSON and schema, safetensors header, tensors against the config, NaN/Inf -
is collected and raised together as one ``ValidationError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from registry import schemas
from registry.errors import FormatError, UnsafeFormatError, ValidationError
from registry.formats.check_adapterhub import adapterhub_method
from registry.formats.check_common import nonfloat_factors
from registry.formats.checked_configs import CheckedConfig, keep_config, known_config
from registry.formats.checks import check_tensors
from registry.formats.config_file import (
    BASE_LABEL_MAX,
    CONFIG_NAME,
    MAX_CONFIG_BYTES,
    canonical_order,
    config_bytes,
    detect_format,
    normalise_peft_config,
    parse_config,
)
from registry.formats.listing import EXPECTED, list_directory
from registry.formats.matching import regex_problems
from registry.formats.model import AdapterFile, AdapterSource, TensorInfo
from registry.formats.nonfinite import find_nonfinite
from registry.formats.peft_types import ANALYSED_TYPES, DEFAULT_ANALYSIS, analysis_of, method_of
from registry.formats.pickle_convert import (
    PICKLE_SUFFIXES,
    convert_pickle_weights,
    pickle_refusal,
)
from registry.formats.safetensors_header import inspect_safetensors_header
from registry.formats.single_file import (
    DIFFUSERS_FILE,
    SINGLE_FILE_FORMATS,
    base_model_of,
    describe_unknown,
    read_single_file,
    single_file_format,
)
from registry.formats.text import show
from registry.formats.trainer_state import CHECKPOINT_DIR

# The PEFT types whose tensors are checked against their config (analysis "full").
PEFT_TYPES: dict[str, str] = ANALYSED_TYPES
# (safetensors weights, legacy pickle weights) per source format.
WEIGHTS_NAMES: dict[str, tuple[str, str]] = {
    "peft": ("adapter_model.safetensors", "adapter_model.bin"),
    "adapterhub": ("adapter.safetensors", "pytorch_adapter.bin"),
}
CARD_NAME = "README.md"
# AdapterHub keeps a prediction head or fusion layer next to the adapter, in their own files.
_HUB_EXTRA_SAFETENSORS = frozenset({"model_head.safetensors", "model_adapter_fusion.safetensors"})
_EXTRA_SUFFIXES = frozenset(
    {".json", ".txt", ".md", ".model", ".jinja", ".yaml", ".yml", ".tiktoken"}
)
_EXTRA_NAMES = frozenset({"LICENSE", "NOTICE", "COPYING"})
MAX_EXTRA_BYTES = 64 * 1024 * 1024
_TRAINING_STATE = re.compile(
    r"optimizer\.pt|scheduler\.pt|scaler\.pt|training_args\.bin|rng_state(_\d+)?\.pth"
)


@dataclass
class _Inputs:
    files: dict[str, Path] = field(default_factory=dict)
    pickles: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Config:
    method: str | None
    config: dict[str, Any]
    problems: list[str]
    analysis: str = DEFAULT_ANALYSIS


def read_adapter_dir(
    directory: Path, *, convert_pickle: bool = False, work_dir: Path | None = None
) -> AdapterSource:
    """Read and check the adapter in ``directory``.

    With ``convert_pickle`` a directory whose only weights are pickle is converted with
    ``torch.load(weights_only=True)`` into safetensors inside ``work_dir`` (required then); the
    converted file is what the result's weights entry points at.
    """
    directory = Path(directory)
    if directory.is_file() and directory.suffix == ".safetensors":
        return _read_single({directory.name: directory}, [], str(directory), single=True)
    listing = list_directory(directory)
    if CONFIG_NAME not in listing.files:
        lone = _lone_safetensors(listing.files)
        if lone is not None:
            return _read_single(listing.files, listing.skipped, str(directory), single=False)
        raise FormatError(_no_config(directory, listing.nested_adapters))
    inputs = _Inputs(listing.files, listing.pickles, list(listing.skipped))
    others = _other_adapters(listing.nested_adapters)
    if others:
        inputs.skipped.append(
            f"{show(str(directory))} holds {len(others) + 1} adapters: this one at the top and "
            f"{', '.join(f'{show(n)}/' for n in others)} (PEFT saves each named adapter in a "
            "subfolder); push them all with --all-adapters (Registry.push_all)"
        )
    return _read(inputs, str(directory), convert_pickle=convert_pickle, work_dir=work_dir)


def _other_adapters(nested: list[str]) -> list[str]:
    # A trainer checkpoint is a step of the adapter above it, not another adapter.
    return [name for name in nested if not CHECKPOINT_DIR.fullmatch(name)]


def read_adapter_files(files: Mapping[str, Path], *, label: str) -> AdapterSource:
    """Check stored files (relative path -> file holding its bytes) as ``read_adapter_dir`` does."""
    inputs = _Inputs()
    for relative, path in sorted(files.items()):
        pure = PurePosixPath(relative)
        if not relative or pure.is_absolute() or ".." in pure.parts or str(pure) != relative:
            raise FormatError(f"{label}: {show(relative)} is not a plain relative file path")
        if pure.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeFormatError(f"{label}: " + pickle_refusal(show(relative)))
        inputs.files[relative] = Path(path)
    if CONFIG_NAME not in inputs.files:
        if _lone_safetensors(inputs.files) is not None:
            return _read_single(inputs.files, [], label, single=len(inputs.files) == 1)
        raise FormatError(f"{label}: no {CONFIG_NAME} among its files")
    return _read(inputs, label, convert_pickle=False, work_dir=None)


def _lone_safetensors(files: Mapping[str, Path]) -> str | None:
    """The one safetensors file of a directory without a config (a single-file LoRA's)."""
    # A PEFT or AdapterHub weights file without its config is that format missing its config.
    adapter_weights = {names[0] for names in WEIGHTS_NAMES.values()}
    found = [n for n in files if n.endswith(".safetensors") and n not in adapter_weights]
    if DIFFUSERS_FILE in found:
        return DIFFUSERS_FILE
    return found[0] if len(found) == 1 else None


def _read_single(
    files: Mapping[str, Path], skipped: list[str], label: str, *, single: bool
) -> AdapterSource:
    """A diffusers or kohya LoRA: one safetensors file, no config (see formats/single_file)."""
    name = _lone_safetensors(files)
    assert name is not None
    path = files[name]
    header = inspect_safetensors_header(path)
    if header.problems:
        raise ValidationError(label, [f"{show(name)}: {p}" for p in header.problems])
    source_format = single_file_format(header.tensors)
    if source_format is None:
        raise FormatError(
            f"{label}: this format is not supported: {show(name)} is neither a PEFT or "
            f"AdapterHub adapter (no {CONFIG_NAME}) nor a diffusers or kohya LoRA; "
            f"{describe_unknown(header.tensors)}"
        )
    read = read_single_file(source_format, path, header.tensors, header.metadata)
    problems = [f"{show(name)}: {p}" for p in read.problems]
    problems.extend(f"{show(name)}: {p}" for p in nonfloat_factors(header.tensors))
    if not problems:
        problems.extend(_nonfinite(name, path, header.tensors))
    if problems:
        raise ValidationError(label, problems)
    stored = [AdapterFile(name, path, "weights")]
    notes = list(skipped)
    for other, other_path in sorted(files.items()):
        if other == name or single:
            continue
        role, reason = _classify(other, other_path, "single")
        if role is not None:
            stored.append(AdapterFile(other, other_path, role))
        else:
            notes.append(f"{show(other)}: {reason}")
    return AdapterSource(
        source_format=source_format,
        method=SINGLE_FILE_FORMATS[source_format],
        config=canonical_order(read.config),
        config_path="",
        config_bytes=b"",
        weights_path=name,
        files=tuple(sorted(stored, key=lambda f: f.path)),
        tensors=dict(sorted(header.tensors.items())),
        base_model_name=base_model_of(header.metadata),
        base_model_revision=None,
        skipped=tuple(sorted(notes)),
        features=(),
        analysis="structural",
    )


def _no_config(directory: Path, nested: list[str]) -> str:
    message = f"{directory} has no {CONFIG_NAME}; expected {EXPECTED}"
    if nested:
        shown = ", ".join(f"{show(name)}/" for name in nested[:5])
        message += f"; subdirectories holding adapters: {shown}"
        others = _other_adapters(nested)
        if others:
            message += f"; push all {len(others)} with --all-adapters (Registry.push_all)"
    return message


def _read(
    inputs: _Inputs, label: str, *, convert_pickle: bool, work_dir: Path | None
) -> AdapterSource:
    config_source = inputs.files[CONFIG_NAME]
    try:
        with config_source.open("rb") as handle:
            # One byte past the limit is enough for parse_config to refuse an oversized file.
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise FormatError(f"{label}: cannot read {CONFIG_NAME}: {exc.strerror or exc}") from exc
    known = known_config(raw)
    source_format: str | None
    checked: _Config | None
    problems: list[str] = []
    if known is not None:
        source_format = known.source_format
        checked = _Config(known.method, known.config, [], known.analysis)
    else:
        source_format, checked, problems = _parse_and_check(raw)
    weights_format = source_format or _guess_format(inputs)
    weights_name, weights_source, notes = _weights(
        weights_format, inputs, label, convert_pickle, work_dir
    )

    header = inspect_safetensors_header(weights_source)
    problems.extend(f"{weights_name}: {p}" for p in header.problems)
    features: set[str] = set()
    if not header.problems:
        if (
            checked is not None
            and checked.method is not None
            and not checked.problems
            and checked.analysis == "full"
        ):
            result = check_tensors(checked.method, checked.config, header.tensors)
            problems.extend(f"{weights_name}: {p}" for p in result.problems)
            features = result.features
        else:
            # The config is broken, so the tensors cannot be checked against it; their
            # dtypes still can, and every problem is reported at once.
            problems.extend(f"{weights_name}: {p}" for p in nonfloat_factors(header.tensors))
        problems.extend(_nonfinite(weights_name, weights_source, header.tensors))
    if problems:
        raise ValidationError(label, problems)
    assert checked is not None and checked.method is not None and source_format is not None

    files, skipped = _files(inputs, source_format, weights_name, weights_source)
    config = checked.config
    if known is not None:
        stored = known.stored_bytes
    else:
        stored = config_bytes(config)
        passed = CheckedConfig(source_format, checked.method, config, checked.analysis, stored)
        keep_config(raw, passed)
    return AdapterSource(
        source_format=source_format,
        method=checked.method,
        config=config,
        config_path=CONFIG_NAME,
        config_bytes=stored,
        weights_path=weights_name,
        files=files,
        tensors=dict(sorted(header.tensors.items())),
        base_model_name=_text(
            config.get("base_model_name_or_path" if source_format == "peft" else "model_name")
        ),
        base_model_revision=_text(config.get("revision")) if source_format == "peft" else None,
        skipped=tuple(sorted(inputs.skipped + notes + skipped)),
        features=tuple(sorted(features)),
        analysis=checked.analysis,
    )


def _parse_and_check(raw: bytes) -> tuple[str | None, _Config | None, list[str]]:
    """The config ``raw`` parsed and checked: its format, what the checks made of it (None
    when it is not a config of a known format), and every problem found."""
    document, problems = parse_config(raw)
    source_format = detect_format(document) if document is not None else None
    if document is not None and source_format is None:
        problems.append(
            f"{CONFIG_NAME}: not a PEFT config (no peft_type) nor an AdapterHub adapter config "
            '(no nested "config" with model facts)'
        )
    checked = None
    if document is not None and source_format is not None:
        checked = _check_config(source_format, document)
        problems.extend(checked.problems)
    return source_format, checked, problems


def _guess_format(inputs: _Inputs) -> str:
    for source_format, names in WEIGHTS_NAMES.items():
        if names[0] in inputs.files or names[1] in inputs.pickles:
            return source_format
    return "peft"


def _weights(
    source_format: str,
    inputs: _Inputs,
    label: str,
    convert_pickle: bool,
    work_dir: Path | None,
) -> tuple[str, Path, list[str]]:
    """The weights file's name and where to read it, plus notes on the pickle files."""
    safe, pickled = WEIGHTS_NAMES[source_format]
    others = sorted(name for name in inputs.pickles if name != pickled)
    notes = [f"{show(name)}: {_pickle_reason(name)}" for name in others]
    if safe in inputs.files:
        if pickled in inputs.pickles:
            notes.append(f"{pickled}: pickle copy of the weights, not read; {safe} is used")
        return safe, inputs.files[safe], notes
    if pickled not in inputs.pickles:
        raise FormatError(f"{label} has {CONFIG_NAME} but no {safe}; expected {EXPECTED}")
    if not convert_pickle:
        raise UnsafeFormatError(pickle_refusal(f"{label}/{pickled}"))
    if work_dir is None:
        raise ValueError("convert_pickle=True needs a work_dir to write the converted weights")
    target = Path(work_dir) / safe
    convert_pickle_weights(inputs.pickles[pickled], target)
    notes.append(
        f"{pickled}: pickle weights, converted to {safe} with torch.load(weights_only=True); "
        "the pickle itself is not stored"
    )
    return safe, target, notes


def _pickle_reason(name: str) -> str:
    if _TRAINING_STATE.fullmatch(name):
        return "training state, not part of the adapter"
    if name == "pytorch_model_head.bin":
        return "pickle prediction head, not read; save it as model_head.safetensors to keep it"
    return "pickle file, not read (loading it could run code)"


def _check_config(source_format: str, document: dict[str, Any]) -> _Config:
    if source_format == "peft":
        return _check_peft_config(document)
    return _check_adapterhub_config(document)


def _check_peft_config(document: dict[str, Any]) -> _Config:
    config = normalise_peft_config(document)
    lines = schemas.validate(config, "peft_config")
    peft_type = config.get("peft_type")
    # Any well-formed type is stored; the schema refuses only a malformed name.
    well_formed = isinstance(peft_type, str) and not any(
        line.startswith("$.peft_type:") for line in lines
    )
    if not well_formed:
        return _Config(None, config, [f"{CONFIG_NAME}: {line}" for line in lines])
    assert isinstance(peft_type, str)
    method, analysis = method_of(peft_type), analysis_of(peft_type)
    if not lines:
        # Only a config of the right types can be searched for regexes that do not compile.
        lines = regex_problems(config) + _label_problems(
            config, ("base_model_name_or_path", "revision")
        )
    return _Config(method, config, [f"{CONFIG_NAME}: {line}" for line in lines], analysis)


def _label_problems(config: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    # These become catalog columns and lookup keys; PostgreSQL cannot store NUL in text, and
    # control characters would let a name print as a different one.
    texts = {key: config[key] for key in keys if isinstance(config.get(key), str)}
    return [
        f"$.{key}: {show(text)} contains control characters"
        for key, text in texts.items()
        if not text.isprintable()
    ] + [
        f"$.{key}: {show(text)} is longer than {BASE_LABEL_MAX} characters"
        for key, text in texts.items()
        if len(text) > BASE_LABEL_MAX
    ]


def _check_adapterhub_config(document: dict[str, Any]) -> _Config:
    config = canonical_order(document)
    architecture = config["config"].get("architecture")
    method = adapterhub_method(config["config"])
    if method is None:
        return _Config(
            None,
            config,
            [
                f"{CONFIG_NAME}: $.config.architecture: AdapterHub {architecture!r} adapters "
                "are not supported; bottleneck, LoRA, IA3 and prefix tuning adapters are read"
            ],
        )
    lines = schemas.validate(config, "adapterhub_config")
    if not lines:
        lines = _label_problems(config, ("model_name",))
    return _Config(method, config, [f"{CONFIG_NAME}: {line}" for line in lines])


def _nonfinite(weights_name: str, path: Path, tensors: Mapping[str, TensorInfo]) -> list[str]:
    try:
        names = find_nonfinite(path, tensors)
    except ValidationError as exc:
        return [f"{weights_name}: {p}" for p in exc.problems]
    return [f"{weights_name}: tensor {show(name)} contains NaN or Inf values" for name in names]


def _files(
    inputs: _Inputs, source_format: str, weights_name: str, weights_source: Path
) -> tuple[tuple[AdapterFile, ...], list[str]]:
    """The files to store, sorted by path, and the other files with why they are left out."""
    files = [
        AdapterFile(CONFIG_NAME, inputs.files[CONFIG_NAME], "config"),
        AdapterFile(weights_name, weights_source, "weights"),
    ]
    skipped: list[str] = []
    for name, path in sorted(inputs.files.items()):
        if name in (CONFIG_NAME, weights_name):
            continue
        role, reason = _classify(name, path, source_format)
        if role is not None:
            files.append(AdapterFile(name, path, role))
        else:
            skipped.append(f"{show(name)}: {reason}")
    return tuple(sorted(files, key=lambda f: f.path)), skipped


def _classify(name: str, path: Path, source_format: str) -> tuple[str | None, str]:
    """The role of a file besides config and weights, or None and why it is not stored."""
    if name == "trainer_state.json":
        return None, "trainer bookkeeping; its step and eval metrics are recorded instead"
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".safetensors" and not (
        source_format == "adapterhub" and name in _HUB_EXTRA_SAFETENSORS
    ):
        return None, "a safetensors file other than the adapter weights; not stored"
    known = (
        name == CARD_NAME
        or suffix in _EXTRA_SUFFIXES
        or suffix == ".safetensors"
        or PurePosixPath(name).name in _EXTRA_NAMES
    )
    if not known:
        return None, "not an adapter, card, tokenizer or text file; not stored"
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    if size > MAX_EXTRA_BYTES:
        return None, f"{size} bytes, more than the {MAX_EXTRA_BYTES} kept for extra files"
    return ("card" if name == CARD_NAME else "extra"), ""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
