"""The vLLM resolver plugin, loaded by vLLM's own plugin loader from the entry point.

vLLM is installed without its dependencies (.ci/test); its plugin loader, resolver
registry and ``LoRARequest`` are the real ones. Each scenario runs in a fresh process,
as vLLM loads plugins once per process.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import peft
import pytest
import tomllib
import torch
from support.models import base_model, outputs, save_base
from support.peft_adapters import make_adapter

from registry import Registry

try:
    import vllm  # noqa: F401
except ImportError:
    # CI installs it (.ci/install-vllm) and sets this, so a missing vLLM fails there.
    if os.environ.get("ADAPTERS_REQUIRE_VLLM") == "1":
        raise
    pytest.skip("vLLM is not installed: bash .ci/install-vllm", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import asyncio, json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from vllm.plugins import load_general_plugins
from vllm.lora.resolver import LoRAResolverRegistry
load_general_plugins()
resolver = LoRAResolverRegistry.get_resolver("adapter-registry")
answers = []
for base, name in json.loads(sys.argv[1]):
    request = asyncio.run(resolver.resolve_lora(base, name))
    answers.append(None if request is None else [request.lora_name, request.lora_path,
                                                 request.lora_int_id])
print(json.dumps({"resolvers": sorted(LoRAResolverRegistry.get_supported_resolvers()),
                  "answers": answers}))
"""


def _plugin_path(tmp_path: Path) -> str:
    """Where vLLM finds the entry point: the installed distribution's metadata when it
    declares it (a CI install), else metadata written from pyproject.toml's declaration."""
    installed = importlib.metadata.entry_points(group="vllm.general_plugins")
    if any(e.name == "adapter_registry" for e in installed):
        return str(ROOT)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    plugins = project["project"]["entry-points"]["vllm.general_plugins"]
    dist = tmp_path / "site" / "adapter_registry_plugin-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: adapter-registry-plugin\nVersion: 0\n"
    )
    lines = [f"{name} = {target}" for name, target in plugins.items()]
    (dist / "entry_points.txt").write_text("[vllm.general_plugins]\n" + "\n".join(lines) + "\n")
    return os.pathsep.join([str(ROOT), str(tmp_path / "site")])


def _resolve(tmp_path: Path, queries: list[tuple[str, str]], plugins: str = "adapter_registry"):
    env = {**os.environ, "PYTHONPATH": _plugin_path(tmp_path), "VLLM_PLUGINS": plugins}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(queries)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_resolves_refs_on_the_right_base_and_refuses_another(
    sqlite_registry: Registry, tmp_path: Path
) -> None:
    made = make_adapter("lora", tmp_path / "bot", seed=0)
    served = save_base(made.base_factory(), tmp_path / "served-base")
    other = save_base(base_model("llama", seed=7), tmp_path / "other-base")
    pushed = sqlite_registry.push(made.directory, name="bot", base_path=served, alias="prod")
    digest = pushed.version.digest
    dora = make_adapter("dora", tmp_path / "dora", seed=0)
    sqlite_registry.push(dora.directory, name="dora-bot", base_path=served)

    result, log = _resolve(
        tmp_path,
        [
            (str(served), "bot@prod"),
            (str(served), f"bot@{digest}"),
            (str(served), "bot"),
            (str(other), "bot@prod"),
            (str(served), "missing-bot"),
            (str(served), "dora-bot"),
        ],
    )
    assert "adapter-registry" in result["resolvers"]
    first, pinned, bare, mismatch, missing, dora_answer = result["answers"]
    path = sqlite_registry.materialize("bot@prod")
    assert first[:2] == ["bot@prod", str(path)] and first[2] > 0
    assert pinned[1] == bare[1] == str(path)
    assert mismatch is None and missing is None and dora_answer is None
    refusal = [line for line in log.splitlines() if "refusing to load" in line]
    assert len(refusal) == 1 and "bot@1" in refusal[0] and "weights" in refusal[0]
    assert "vLLM serves plain LoRA adapters, not DoRA" in log

    # What vLLM would load from the path is the adapter, bit for bit (PEFT reads it the same).
    loaded = peft.PeftModel.from_pretrained(made.base_factory(), first[1]).eval()
    assert torch.equal(outputs(loaded, made.inputs), outputs(made.peft_model, made.inputs))


def test_not_loaded_unless_named_in_vllm_plugins(sqlite_registry: Registry, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": _plugin_path(tmp_path), "VLLM_PLUGINS": "something_else"}
    code = (
        "from vllm.plugins import load_general_plugins\n"
        "from vllm.lora.resolver import LoRAResolverRegistry\n"
        "load_general_plugins()\n"
        "print(sorted(LoRAResolverRegistry.get_supported_resolvers()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    assert "adapter-registry" not in done.stdout
