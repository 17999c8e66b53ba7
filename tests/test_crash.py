"""Crash safety: push, combine, merge, gc and hub pull killed with SIGKILL at named points.

Each case runs the real CLI in a subprocess with ``ADAPTERS_FAULT_POINT`` set
(``registry/faults.py``), so the process dies at that step with no cleanup of any kind.
Then the registry must be consistent: every version's blobs present with their recorded
size and hash, every blob in the store complete (temp files only in staging, never
listed as blobs), ``adapters verify`` passing for every version, ``doctor --deep`` finding
no error (only what ``gc`` clears), a merge target absent or complete. Then the same
command, run again without the fault, completes with the right result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.hub_emulator import HubEmulator
from support.models import base_model
from support.ops_adapters import save_adapter
from transformers import PreTrainedModel

from registry import Registry
from registry.cli import main
from registry.faults import ENV_VAR
from registry.store.blobs import TMP_PREFIX
from registry.store.catalog.listing import ListFilter

# huggingface_hub's LFS upload passes a file as data=, which httpx2 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

REPO_ROOT = Path(__file__).resolve().parent.parent
HUB_REPO = "alice/a"


@dataclass(frozen=True)
class Case:
    command: str  # push | combine | merge | merge-overwrite | gc | hub-pull
    point: str  # NAME or NAME#N, as ADAPTERS_FAULT_POINT takes it

    @property
    def id(self) -> str:
        return f"{self.command}:{self.point}"


def _cases(command: str, *points: str) -> list[Case]:
    return [Case(command, point) for point in points]


def _nth(point: str, count: int) -> list[str]:
    return [f"{point}#{n}" for n in range(1, count + 1)]


# The pushed adapter has three files (config, weights, card); a combined one two; the base
# has four shards; the gc registry has four unreferenced blobs (checked by the fixture).
PUSH_POINTS = [
    *_nth("push.staged", 3),
    *_nth("push.leased", 3),
    *_nth("push.blob-committed", 3),
    "push.before-commit",
    "catalog.insert-version",
    "push.after-commit",
]
CASES = [
    *_cases("push", *PUSH_POINTS),
    *_cases(
        "combine",
        "combine.computed",
        *_nth("push.staged", 2),
        "push.leased#1",
        *_nth("push.blob-committed", 2),
        "push.before-commit",
        "catalog.insert-version",
        "push.after-commit",
    ),
    *_cases("merge", *_nth("merge.shard-written", 4), "merge.before-rename", "merge.after-rename"),
    *_cases(
        "merge-overwrite",
        "merge.shard-written#1",
        "merge.before-rename",
        "merge.moved-aside",
        "merge.after-rename",
    ),
    *_cases("gc", *_nth("gc.deleted", 4), "gc.before-commit"),
    *_cases(
        "hub-pull",
        *_nth("hub.downloaded", 4),
        "hub.verified",
        "push.staged#1",
        "push.leased#2",
        "push.blob-committed#3",
        "push.before-commit",
        "catalog.insert-version",
        "push.after-commit",
    ),
]


# Kill points of an overwriting merge before which the previous output must be untouched.
OLD_OUTPUT_KEPT = {"merge.shard-written#1", "merge.before-rename"}


def test_kill_points_are_many_and_distinct() -> None:
    # docs/reliability.md quotes this number.
    assert len({case.id for case in CASES}) == len(CASES) == 47


# -- prepared registries -------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    root: Path
    base: Path  # a tiny Llama in four shards
    fresh: Path  # an adapter no registry holds yet
    seeded: Path  # a registry with a@1 and b@1 (pushed with the base) and garbage
    empty: Path  # a registry with nothing in it
    orphans: frozenset[str]  # the seeded registry's unreferenced blobs
    fresh_digest: str  # what pushing ``fresh`` records
    combined_digest: str  # what combining a and b with cat records
    merged_a: dict[str, bytes]  # merge of a into the base, file by file
    merged_b: dict[str, bytes]


def _tree(directory: Path) -> dict[str, bytes]:
    """The visible files of a directory (hidden siblings of a merge are not in it)."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    root = tmp_path_factory.mktemp("crash")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ADAPTERS_DATABASE_URL", raising=False)
        mp.setenv("ADAPTERS_ACTOR", "tester@ci")
        base = root / "base"
        model = base_model()
        assert isinstance(model, PreTrainedModel)
        model.save_pretrained(base, max_shard_size="30KB")  # sharded: one kill point per shard
        assert len(list(base.glob("*.safetensors"))) == 4
        a = save_adapter("lora", root / "a", 1)
        b = save_adapter("lora", root / "b", 2)
        doomed = save_adapter("lora", root / "doomed", 3)
        fresh = save_adapter("rslora", root / "fresh", 4)  # a config no registry holds

        seeded = root / "seeded"
        with Registry.open(seeded, create=True) as reg:
            reg.push(a, name="a", base_path=base)
            reg.push(b, name="b", base_path=base)
            reg.push(doomed, name="doomed")
            reg.remove("doomed@1", force=True)
            reg.blobs.put_bytes(b"left by an interrupted push\n")
            reg.blobs.put_bytes(b"and another one\n")
            reg.blobs.put_bytes(b"and a third\n")
            orphans = frozenset(set(reg.blobs.iter_digests()) - reg.catalog.referenced_blobs())
        assert len(orphans) >= 4
        empty = root / "empty"
        Registry.open(empty, create=True).close()

        scratch = root / "scratch"
        shutil.copytree(seeded, scratch)
        with Registry.open(scratch) as reg:
            fresh_digest = reg.push(fresh, name="fresh").version.digest
            combined = reg.combine(["a", "b"], name="ab", method="cat")
            reg.merge_into_base("a", base, root / "merged-a")
            reg.merge_into_base("b", base, root / "merged-b")
        yield Prepared(
            root=root,
            base=base,
            fresh=fresh,
            seeded=seeded,
            empty=empty,
            orphans=orphans,
            fresh_digest=fresh_digest,
            combined_digest=combined.version.digest,
            merged_a=_tree(root / "merged-a"),
            merged_b=_tree(root / "merged-b"),
        )


def test_the_reference_merge_loads(prepared: Prepared) -> None:
    import torch
    import transformers

    model = transformers.LlamaForCausalLM.from_pretrained(prepared.root / "merged-a")
    base = transformers.LlamaForCausalLM.from_pretrained(prepared.base)
    ids = torch.arange(8).reshape(1, 8)
    with torch.no_grad():
        merged_logits, base_logits = model(ids).logits, base(ids).logits
    assert torch.isfinite(merged_logits).all() and not torch.equal(merged_logits, base_logits)


# -- running and checking ------------------------------------------------------------------


def _args(case: Case, prepared: Prepared, out: Path) -> list[str]:
    if case.command == "push":
        return ["push", str(prepared.fresh), "--name", "fresh"]
    if case.command == "combine":
        return ["combine", "a", "b", "--method", "cat", "--name", "ab"]
    if case.command.startswith("merge"):
        # --overwrite makes the command repeatable: the rerun replaces what a crash left.
        return ["merge", "a", "--base", str(prepared.base), "--out", str(out), "--overwrite"]
    if case.command == "gc":
        return ["gc"]
    assert case.command == "hub-pull"
    return ["hub", "pull", f"{HUB_REPO}@v1"]


def _kill(home: Path, args: list[str], point: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, ENV_VAR: point}
    return subprocess.run(
        [sys.executable, "-m", "registry.cli", "--registry", str(home), *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--registry", str(home), *args], catch_exceptions=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_consistent(home: Path) -> None:
    """No version points at a missing or partial blob, and no partial blob is visible."""
    from registry.admin.doctor import diagnose

    with Registry.open(home) as reg:
        versions = reg.catalog.list_versions(ListFilter())
        for version in versions:
            for entry in version.files:
                path = reg.blobs.path(entry.sha256)
                assert path.is_file(), f"{version.ref}: {entry.path} is missing"
                assert path.stat().st_size == entry.size, f"{version.ref}: {entry.path} size"
                assert _sha256(path) == entry.sha256, f"{version.ref}: {entry.path} content"
        # Every blob a reader can list is complete: it hashes to its name.
        for sha256 in reg.blobs.iter_digests():
            assert len(sha256) == 64 and _sha256(reg.blobs.path(sha256)) == sha256
        store = reg.blobs.root / "sha256"
        for prefix in store.iterdir() if store.is_dir() else ():
            if prefix.name != "staging":
                assert not [p for p in prefix.iterdir() if p.name.startswith(TMP_PREFIX)]
        report = diagnose(reg.home, reg.home.database_url(), deep=True)
    for finding in report.findings:
        # What a crash may leave: unreferenced blobs, temp files and leases, all gc's.
        assert finding.severity != "error", finding
        if finding.severity == "warning":
            assert finding.fix == "adapters gc", finding
    for version in versions:
        verified = _cli(home, "verify", version.ref)
        assert verified.exit_code == 0, verified.output


def assert_merge_target(out: Path, allowed: list[dict[str, bytes]]) -> None:
    """The target is absent or one complete merge; what a crash left beside it is hidden:
    the staging directory, or the previous output renamed aside."""
    if out.exists():
        assert _tree(out) in allowed, "a partial merge output is visible at the target"
    for entry in out.parent.iterdir():
        hidden = (f".{out.name}.partial-", f".{out.name}.old-")
        assert entry == out or entry.name.startswith(hidden), entry


def _versions_named(home: Path, name: str) -> list[str]:
    with Registry.open(home) as reg:
        return [v.digest for v in reg.catalog.list_versions(ListFilter(name_glob=name))]


@pytest.mark.parametrize("case", [c for c in CASES if c.command != "hub-pull"], ids=lambda c: c.id)
def test_kill_then_rerun(case: Case, prepared: Prepared, tmp_path: Path) -> None:
    home = tmp_path / "registry"
    shutil.copytree(prepared.seeded, home)
    out = tmp_path / "out" / "merged"
    out.parent.mkdir()
    allowed = [prepared.merged_a]
    if case.command == "merge-overwrite":
        shutil.copytree(prepared.root / "merged-b", out)
        allowed.append(prepared.merged_b)
    args = _args(case, prepared, out)

    killed = _kill(home, args, case.point)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert_consistent(home)
    if case.command.startswith("merge"):
        assert_merge_target(out, allowed)
    if case.command == "merge-overwrite" and case.point in OLD_OUTPUT_KEPT:
        # Until the new output is complete, the old one stays whole where it was.
        assert _tree(out) == prepared.merged_b

    rerun = _cli(home, *args)
    assert rerun.exit_code == 0, rerun.output
    assert_consistent(home)
    if case.command == "push":
        assert _versions_named(home, "fresh") == [prepared.fresh_digest]
    elif case.command == "combine":
        assert _versions_named(home, "ab") == [prepared.combined_digest]
    elif case.command.startswith("merge"):
        assert _tree(out) == prepared.merged_a
        assert_merge_target(out, [prepared.merged_a])
    else:
        with Registry.open(home) as reg:
            stored = set(reg.blobs.iter_digests())
            assert not stored & prepared.orphans
            assert reg.catalog.referenced_blobs() <= stored


@pytest.mark.parametrize("case", [c for c in CASES if c.command == "hub-pull"], ids=lambda c: c.id)
def test_hub_pull_kill_then_rerun(
    case: Case, prepared: Prepared, hub: HubEmulator, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    shutil.copytree(prepared.seeded, source)
    pushed = _cli(source, "hub", "push", "a@1", HUB_REPO)
    assert pushed.exit_code == 0, pushed.output
    home = tmp_path / "registry"
    shutil.copytree(prepared.empty, home)
    args = _args(case, prepared, tmp_path)

    killed = _kill(home, args, case.point)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert_consistent(home)

    rerun = _cli(home, *args)
    assert rerun.exit_code == 0, rerun.output
    assert_consistent(home)
    with Registry.open(source) as reg:
        expected = reg.get("a@1").digest
    assert _versions_named(home, "a") == [expected]
    shown = json.loads(_cli(home, "show", "a@1", "--json").stdout)
    assert [link["direction"] for link in shown["hub"]] == ["pull"]
