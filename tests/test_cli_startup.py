"""Start-up cost and global options: `adapters --help` imports no heavy library, each
command imports its own module only, `--registry`/`--json` may follow the command, and
the implicit user-dir registry is named on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import main
from registry.cli.main import COMMANDS, hoist_global_options

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "sqlmodel", "torch", "numpy", "safetensors", "huggingface_hub", "peft")


def _imported_after(args: list[str], env_home: Path) -> set[str]:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['adapters', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('registry.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\nMODULES', ' '.join(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "ADAPTERS_HOME": str(env_home)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    line = done.stdout.rsplit("MODULES ", 1)[1]
    return {name.split(".")[0] for name in line.split()}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["hub", "--help"]])
def test_help_and_version_import_no_heavy_library(args: list[str], hermetic_env: Path) -> None:
    loaded = _imported_after(args, hermetic_env)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_list_imports_no_heavy_library(hermetic_env: Path) -> None:
    Registry.open(hermetic_env, create=True).close()
    # A SQLite catalog is read with the standard library's sqlite3.
    loaded = _imported_after(["list", "--json"], hermetic_env)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_show_imports_no_heavy_library(hermetic_env: Path) -> None:
    from support.lifecycle import insert, manifest

    registry = Registry.open(hermetic_env, create=True)
    insert(registry.catalog, "ab", manifest(1), version="1.0", alias="prod")
    registry.close()
    # Resolved (alias, specifier) and shown with its Hub links through sqlite3 alone.
    for ref in ("ab@prod", "ab>=1,<2"):
        loaded = _imported_after(["show", ref, "--json"], hermetic_env)
        assert not loaded & set(HEAVY), (ref, sorted(loaded & set(HEAVY)))


def test_list_of_a_registry_not_created_yet_opens_it_through_the_catalog(
    hermetic_env: Path,
) -> None:
    loaded = _imported_after(["list"], hermetic_env)
    assert "sqlalchemy" in loaded  # it created the catalog
    assert not loaded & {"torch", "numpy", "safetensors", "huggingface_hub", "peft"}


def test_import_registry_is_lazy_and_every_exported_name_resolves() -> None:
    code = (
        "import sys, registry\n"
        "assert 'sqlalchemy' not in sys.modules, 'import registry pulled SQLAlchemy'\n"
        "from registry import Registry, ListQuery, __version__\n"
        "missing = [n for n in registry.__all__ if getattr(registry, n, None) is None]\n"
        "assert not missing, missing\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "ok", done.stderr
    import registry

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = registry.nope  # type: ignore[attr-defined]


def test_the_lazy_command_table_matches_the_commands() -> None:
    ctx = click.Context(main)
    for name, (_, _, first_sentence) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=1000) == first_sentence, name
    assert main.get_command(ctx, "no-such-command") is None


def test_global_options_after_the_command(tmp_path: Path, hermetic_env: Path) -> None:
    other = tmp_path / "other"
    Registry.open(other, create=True).close()
    runner = CliRunner()
    result = runner.invoke(main, ["list", "--registry", str(other), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert not hermetic_env.exists()  # the environment's registry was never opened
    result = runner.invoke(main, [f"--registry={other}", "--json", "list"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    result = runner.invoke(main, ["hub", "status", "x@1", "--registry", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "is not a registry" in result.stderr


def test_hoisting_keeps_arguments_after_double_dash() -> None:
    assert hoist_global_options(["list", "--registry", "R", "--limit", "3"]) == [
        "--registry",
        "R",
        "list",
        "--limit",
        "3",
    ]
    assert hoist_global_options(["--json", "show", "x", "--", "--registry"]) == [
        "show",
        "x",
        "--json",
        "--",
        "--registry",
    ]


def test_the_implicit_user_registry_is_named_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADAPTERS_HOME")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["list", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert "using registry " in result.stderr and "(user default;" in result.stderr
    assert str(tmp_path / "xdg") in result.stderr
    doctor = CliRunner().invoke(main, ["doctor"])
    assert "using registry " in doctor.stderr and "(user default;" in doctor.stderr


def test_an_explicit_registry_is_not_announced(hermetic_env: Path) -> None:
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0, result.output
    assert "using registry" not in result.stderr
