"""The package's shape, held by tests: layers, no import cycles, module size, one import name.

docs/architecture.md draws the layers; these tests keep the drawing true.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "registry"
MAX_MODULE_LINES = 600

# Lowest first. A module may import (at run time) only from its own layer or lower ones.
# Imports under ``if TYPE_CHECKING:`` name types for annotations and may point anywhere
# that creates no cycle.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "progress", "faults", "release", "check", "bounded_lru"),
    ("schemas",),
    ("formats",),
    ("ops",),
    ("bases",),
    ("store",),
    ("security",),
    ("lifecycle",),
    ("runtime",),
    ("hub",),
    ("admin",),
    ("facade",),
    ("api",),
    ("remote",),
    ("integrations",),
    ("server", "cli"),
]
# The facade's own package file re-exports it; nothing below the CLI imports either.
FACADE = {"registry", "registry.api"}
FACADE_CLIENTS = (
    "registry.cli",
    "registry.admin.demo",
    "registry.integrations",
    "registry.remote",
    "registry.server",
)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top, directory in (("registry", PACKAGE), ("registry.cli", ROOT / "cli"),
                           ("registry.schemas", ROOT / "schemas")):  # fmt: skip
        for path in sorted(directory.rglob("*.py")):
            relative = path.relative_to(directory).with_suffix("").parts
            if top == "registry" and relative[0] in ("cli", "schemas"):
                continue  # the links to the top-level directories, read above
            parts = relative[:-1] if relative[-1] == "__init__" else relative
            found[".".join((top, *parts))] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.AST, bool]]:
    """Every import statement, lazy ones inside functions included, with whether it is
    under ``if TYPE_CHECKING:``."""

    def walk(node: ast.AST, typing_only: bool) -> Iterator[tuple[ast.AST, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, typing_only
            elif isinstance(child, ast.If) and _is_type_checking(child):
                yield from walk(ast.Module(body=child.body, type_ignores=[]), True)
                yield from walk(ast.Module(body=child.orelse, type_ignores=[]), typing_only)
            else:
                yield from walk(child, typing_only)

    yield from walk(tree, False)


def _target(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _edges(*, runtime_only: bool) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {module: set() for module in MODULES}
    for module, path in MODULES.items():
        for node, typing_only in _imports(ast.parse(path.read_text())):
            if runtime_only and typing_only:
                continue
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from registry import schemas` imports the module registry.schemas
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                names = [n if n in MODULES else node.module for n in names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[0] != "registry":
                    continue
                target = _target(name)
                if target is not None and target != module:
                    edges[module].add(target)
    return edges


def _layer(module: str) -> int:
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else "api"
    for index, names in enumerate(LAYERS):
        if first in names:
            return index
    raise AssertionError(f"{module} is in no layer: add its subpackage to LAYERS and the doc")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_edges(runtime_only=True)) == []


def test_runtime_imports_only_go_down_the_layers() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in _edges(runtime_only=True).items()
        if module not in FACADE
        for target in sorted(targets)
        if target not in FACADE and _layer(target) > _layer(module)
    ]
    assert upward == []


def test_services_never_import_the_facade() -> None:
    callers = [
        f"{module} -> {target}"
        for module, targets in _edges(runtime_only=False).items()
        if module not in FACADE and not module.startswith(FACADE_CLIENTS)
        if not module.startswith("registry.facade")
        for target in sorted(targets)
        if target in FACADE or target.startswith("registry.facade")
    ]
    assert callers == []


def test_every_subpackage_is_in_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_no_module_over_the_size_limit() -> None:
    long = {
        module: lines
        for module, path in MODULES.items()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_the_checker_sees_cycles_and_upward_imports() -> None:
    # The checks above must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _layer("registry.store.push") > _layer("registry.formats.reader")
    tree = ast.parse("if TYPE_CHECKING:\n    import a\ndef f():\n    import b\n")
    assert [(type(n).__name__, t) for n, t in _imports(tree)] == [
        ("Import", True),
        ("Import", False),
    ]


@pytest.mark.slow
def test_the_wheel_has_one_top_level_import_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("adapter_registry-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"registry"}
    assert "registry/cli/main.py" in names and "registry/schemas/__init__.py" in names
    assert any(n.startswith("registry/schemas/") and n.endswith(".schema.json") for n in names)
    assert "adapters = registry.cli:main" in entry_points
