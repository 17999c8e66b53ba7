"""Whether the installed transformers accepts the installed peft.

transformers' own PEFT integration (``model.add_adapter``, ``load_adapter``, the
``Trainer`` saving adapters) refuses a peft older than its ``MIN_PEFT_VERSION``; the
two are released separately, so a fresh install can pair a transformers with a peft
it refuses. This reads the minimum from transformers' source without importing it
(importing transformers costs seconds), so ``adapters doctor`` can say so in one line.
"""

from __future__ import annotations

import re
from importlib import metadata, util
from pathlib import Path

from packaging.version import InvalidVersion, Version

_MINIMUM = re.compile(r'^MIN_PEFT_VERSION\s*=\s*["\']([^"\']+)["\']', re.M)


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def transformers_minimum_peft() -> str | None:
    """The lowest peft the installed transformers accepts, or None (not installed or not said)."""
    spec = util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return None
    source = Path(next(iter(spec.submodule_search_locations))) / "integrations" / "peft.py"
    try:
        found = _MINIMUM.search(source.read_text(encoding="utf-8"))
    except OSError:
        return None
    return found.group(1) if found else None


def pairing_problem() -> str | None:
    """One line when the installed transformers refuses the installed peft, else None."""
    peft, transformers = _installed("peft"), _installed("transformers")
    minimum = transformers_minimum_peft() if peft and transformers else None
    if peft is None or transformers is None or minimum is None:
        return None
    try:
        refused = Version(peft) < Version(minimum)
    except InvalidVersion:
        return None
    if not refused:
        return None
    return (
        f"transformers {transformers} needs peft >= {minimum}, but peft {peft} is installed: "
        f"its PEFT integration (add_adapter, load_adapter, Trainer) will refuse to run; "
        f"install a matching pair (pip install 'peft>={minimum}' or an older transformers)"
    )
