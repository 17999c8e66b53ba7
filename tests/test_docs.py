"""Docs that contain commands are checked: the README's set-up, the digest recipe."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from registry.store.hashing import data_digest

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = [block.strip() for block in _bash_blocks(readme)[:2]]
    assert len(commands) == 2
    main_job, tests = commands
    assert main_job.endswith("adapters demo") and "torch==2.13.0" in main_job
    assert "torch==2.13.0" in tests
    # the tested set of versions: a new upstream release cannot change what CI installs
    assert "-c .ci/constraints.txt" in tests
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_data_digest_recipe_in_formats_doc(tmp_path: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("coreutils sha256sum not available")
    doc = (ROOT / "docs" / "formats.md").read_text()
    recipe = next(block for block in _bash_blocks(doc) if "sha256sum" in block)
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    (data / "a.jsonl").write_text('{"x": 1}\n')
    (data / "nested" / "b.txt").write_text("two\n")
    (data / ".hidden").write_text("three\n")
    done = subprocess.run(
        ["bash", "-c", recipe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[0] == data_digest(data).sha256


def test_documented_commands_exist() -> None:
    from click.testing import CliRunner

    from registry.cli import main

    reference = (ROOT / "docs" / "cli.md").read_text()
    documented = set(re.findall(r"^## `adapters ([a-z][a-z -]*?)`", reference, flags=re.M))
    assert documented, "docs/cli.md documents no command"
    for command in sorted(documented):
        result = CliRunner().invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0, f"adapters {command} --help: {result.output}"


def test_cli_reference_is_current() -> None:
    from registry.cli.reference import render

    assert (ROOT / "docs" / "cli.md").read_text() == render(), (
        "docs/cli.md is stale: run python -m registry.cli.reference > docs/cli.md"
    )


def test_no_merge_conflict_markers_are_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    markers = ("<<<<<<< ", ">>>>>>> ")
    found = [
        f"{name}:{number}"
        for name in tracked
        if name.endswith((".py", ".md", ".toml", ".txt", ".cfg", ".yml", ".json", ".html", ".css"))
        and (ROOT / name).is_file()
        for number, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1)
        if line.startswith(markers)
    ]
    assert not found, f"merge conflict markers left in {found}"
