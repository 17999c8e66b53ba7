"""Commands that never read tensors must not pay for importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from registry.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("TORCH_IMPORTED" if "torch" in sys.modules else "TORCH_NOT_IMPORTED")
"""


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "--json"], ["push", "--help"]])
def test_command_does_not_import_torch(args: list[str], hermetic_env: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("TORCH_NOT_IMPORTED"), done.stdout


def test_operator_rules_do_not_import_torch() -> None:
    # The CLI checks combine options against these rules before any tensor is read.
    probe = (
        "import sys\nimport registry.ops.methods\n"
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
