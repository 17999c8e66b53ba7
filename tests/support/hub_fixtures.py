"""The fixtures the Hub tests share, registered for every test module by conftest:
``hub``, an emulated Hub the environment points at for one test, and ``lora``, a real
PEFT LoRA made once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from support.hub_emulator import HubEmulator
    from support.peft_adapters import MadeAdapter


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubEmulator]:
    from support.hub_emulator import serving

    with serving(monkeypatch, tmp_path) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def lora(tmp_path_factory: pytest.TempPathFactory) -> MadeAdapter:
    from support.peft_adapters import make_adapter  # torch and peft: only where used

    return make_adapter("lora", tmp_path_factory.mktemp("adapters") / "my-lora")
