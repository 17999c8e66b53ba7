"""A transformers that refuses the installed peft is said in one line by doctor."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from registry.cli import main
from registry.runtime import peft_pairing


def _pair(monkeypatch: pytest.MonkeyPatch, peft: str, transformers: str, minimum: str) -> None:
    versions = {"peft": peft, "transformers": transformers}
    monkeypatch.setattr(peft_pairing, "_installed", versions.get)
    monkeypatch.setattr(peft_pairing, "transformers_minimum_peft", lambda: minimum)


def test_the_installed_pair_is_accepted() -> None:
    # The pinned set (.ci/constraints.txt) is a pair transformers accepts.
    assert peft_pairing.transformers_minimum_peft() is not None
    assert peft_pairing.pairing_problem() is None


def test_a_refused_pair_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _pair(monkeypatch, "0.21.2", "5.24.0", "0.22.0")
    problem = peft_pairing.pairing_problem()
    assert problem is not None and "\n" not in problem
    assert "transformers 5.24.0 needs peft >= 0.22.0, but peft 0.21.2 is installed" in problem


def test_equal_or_newer_peft_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _pair(monkeypatch, "0.22.0", "5.24.0", "0.22.0")
    assert peft_pairing.pairing_problem() is None


def test_doctor_reports_a_refused_pair(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(tmp_path / "reg")]).exit_code == 0
    _pair(monkeypatch, "0.21.2", "5.24.0", "0.22.0")
    result = runner.invoke(main, ["--registry", str(tmp_path / "reg"), "doctor"])
    assert result.exit_code == 1
    assert "transformers 5.24.0 needs peft >= 0.22.0" in result.output
    assert "pip install 'peft>=0.22.0'" in result.output
