"""Which adapters a multi-adapter directory holds, and the name each is stored under.

PEFT's ``save_pretrained`` of a model with several adapters writes the one named ``default`` at
the top of the directory and every other into a subfolder named after it. A push with
``all_adapters`` stores each as its own name: the top one as NAME, a subfolder's by the name
template (``{name}/{adapter}`` unless given). Trainer checkpoints (``checkpoint-N``) are steps
of the adapter above them, not other adapters, and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry.errors import ArgumentError, FormatError, InvalidNameError
from registry.formats.config_file import CONFIG_NAME
from registry.formats.trainer_state import CHECKPOINT_DIR
from registry.store.refs import validate_name

DEFAULT_TEMPLATE = "{name}/{adapter}"


@dataclass(frozen=True)
class PlannedAdapter:
    subfolder: str  # "" for the default adapter at the top
    directory: Path
    name: str


def nested_adapters(directory: Path) -> list[str]:
    """Subfolders of ``directory`` holding another adapter (not trainer checkpoints)."""
    if not directory.is_dir():
        return []
    return sorted(
        entry.name
        for entry in directory.iterdir()
        if entry.is_dir()
        and not entry.name.startswith(".")
        and (entry / CONFIG_NAME).is_file()
        and not CHECKPOINT_DIR.fullmatch(entry.name)
    )


def plan_all_adapters(directory: Path, name: str, template: str | None) -> list[PlannedAdapter]:
    """Every adapter in ``directory`` with its name; every bad name is reported before any push."""
    template = template or DEFAULT_TEMPLATE
    if "{adapter}" not in template:
        raise ArgumentError(
            f"--name-template {template!r} has no {{adapter}}; every adapter needs its own name, "
            "e.g. '{name}-{adapter}'"
        )
    planned: list[PlannedAdapter] = []
    if (directory / CONFIG_NAME).is_file():
        planned.append(PlannedAdapter("", directory, name))
    problems: list[str] = []
    for sub in nested_adapters(directory):
        try:
            wanted = template.format(name=name, adapter=sub.lower())
        except (KeyError, IndexError, ValueError):
            raise ArgumentError(
                f"--name-template {template!r} may use only {{name}} and {{adapter}}"
            ) from None
        try:
            planned.append(PlannedAdapter(sub, directory / sub, validate_name(wanted)))
        except InvalidNameError:
            problems.append(f"{sub}/ -> {wanted!r}")
    if problems:
        raise InvalidNameError(
            f"adapter names not valid: {', '.join(problems)}; pass --name-template, e.g. "
            "'{name}-{adapter}' (lowercase letters, digits, '.', '_', '-', one 'namespace/')"
        )
    if not planned:
        raise FormatError(
            f"{directory} holds no adapters: no {CONFIG_NAME} at the top or in a subfolder"
        )
    return planned
