"""`lineage`: ancestors and descendants through combine/merge/extract parents."""

from __future__ import annotations

import json

import pytest
from support.lifecycle import insert, manifest, run

from registry import Registry
from registry.lifecycle.results import LineageNode


@pytest.fixture
def family(registry: Registry) -> Registry:
    """a, b roots; m = linear(a 0.7, b 0.3); c = cat(m); d = svd(m, a)."""
    cat = registry.catalog
    a = insert(cat, "a", manifest("a"))
    b = insert(cat, "b", manifest("b"))
    m = insert(cat, "team/m", manifest("m", parents=[a, b], operation="linear", weights=[0.7, 0.3]))
    insert(cat, "c", manifest("c", parents=[m], operation="cat"))
    insert(cat, "d", manifest("d", parents=[m, a], operation="svd"))
    return registry


def flat(nodes: tuple[LineageNode, ...], depth: int = 0) -> list[tuple[int, str, str, object]]:
    out = []
    for node in nodes:
        out.append((depth, node.ref, node.operation, node.weight))
        out.extend(flat(node.links, depth + 1))
    return out


def test_ancestors_and_descendants(family: Registry) -> None:
    report = family.lineage("team/m")
    assert report.operation == "linear"
    assert flat(report.ancestors) == [(0, "a@1", "linear", 0.7), (0, "b@1", "linear", 0.3)]
    assert flat(report.descendants) == [(0, "c@1", "cat", None), (0, "d@1", "svd", None)]
    deep = family.lineage("d")
    assert flat(deep.ancestors) == [
        (0, "team/m@1", "svd", None),
        (1, "a@1", "linear", 0.7),
        (1, "b@1", "linear", 0.3),
        (0, "a@1", "svd", None),
    ]
    assert deep.descendants == ()
    root = family.lineage("a")
    assert root.operation is None and root.ancestors == ()
    assert flat(root.descendants) == [
        (0, "team/m@1", "linear", 0.7),
        (1, "c@1", "cat", None),
        (1, "d@1", "svd", None),
        (0, "d@1", "svd", None),
    ]
    assert flat(family.lineage("a", depth=1).descendants) == [
        (0, "team/m@1", "linear", 0.7),
        (0, "d@1", "svd", None),
    ]


def test_removed_relatives(family: Registry) -> None:
    family.remove("b@1")
    family.remove("c@1")
    report = family.lineage("team/m")
    [a, b] = report.ancestors
    assert (a.present, a.status) == (True, "active")
    assert (b.ref, b.present, b.status) == ("b@1", False, None)
    assert [n.ref for n in report.descendants] == ["d@1"]
    family.yank("d@1", "bad merge")
    assert family.lineage("a").descendants[1].status == "yanked"


def test_same_content_under_another_name_is_not_a_parent(family: Registry) -> None:
    # Identical content under another name has the same digest; lineage follows names too.
    insert(family.catalog, "a-copy", manifest("a"))
    assert family.lineage("a-copy").descendants == ()
    assert len(family.lineage("a").descendants) == 2


def test_lineage_cli(family: Registry) -> None:
    shown = run("lineage", "team/m")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("team/m@1  sha256:") and lines[0].endswith("(linear)")
    assert lines[1] == "ancestors"
    assert lines[2].startswith("├─ a@1") and "[linear, weight 0.7]" in lines[2]
    assert lines[3].startswith("└─ b@1") and "[linear, weight 0.3]" in lines[3]
    assert lines[4] == "descendants"
    nested = run("lineage", "d").stdout
    assert "│  ├─ a@1" in nested and "│  └─ b@1" in nested
    family.remove("b@1")
    assert "(not in the catalog)" in run("lineage", "team/m").stdout
    as_json = json.loads(run("lineage", "d", "--json").stdout)
    assert as_json["ancestors"][0]["links"][0]["ref"] == "a@1"
    plain = run("lineage", "a", "--depth", "1")
    assert plain.exit_code == 0 and "ancestors\n  none" in plain.stdout
    assert run("lineage", "a", "--depth", "0").exit_code == 2
    missing = run("lineage", "zz")
    assert missing.exit_code == 1 and "no adapter named 'zz'" in missing.stderr
