"""``Check``: one named outcome (pass, warn, fail or skip) with a sentence saying why.

Shared by verify, the compatibility checks and the promotion gates, so that every
report reads the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CheckStatus = Literal["pass", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
