"""The lineage graph's layout: edge labels sit clear of every line start, node and other
label (the page draws what build_graph places)."""

from __future__ import annotations

import itertools

from registry.lifecycle.results import LineageNode, LineageReport
from registry.server.ui.lineage_graph import LABEL_GAP, LABEL_H, NODE_H, NODE_W, build_graph

Box = tuple[float, float, float, float]  # x, y, width, height


def node(name: str, operation: str, weight: float | None = None) -> LineageNode:
    return LineageNode(name, "1", "sha256:0", True, "active", operation, weight)


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_labels_clear_of_lines_nodes_and_each_other() -> None:
    # Two parents combined into the version; three children made from it (fan-in, fan-out).
    report = LineageReport(
        "me@1",
        "sha256:0",
        "combine",
        ancestors=(node("p-one", "combine", 0.7), node("p-two", "combine", 0.3)),
        descendants=(
            node("c-merge", "merge"),
            node("c-extract", "extract"),
            node("c-combine", "task_arithmetic", 0.25),
        ),
    )
    graph = build_graph(report)
    assert len(graph.edges) == 5
    nodes: list[Box] = [(n.x, n.y, NODE_W, NODE_H) for n in graph.nodes]
    labels: list[Box] = [(e.label_x, e.label_y, e.label_w, LABEL_H) for e in graph.edges]
    starts = []
    for edge in graph.edges:
        x1, y1 = (float(v) for v in edge.path.split()[0][1:].split(","))
        starts.append((x1, y1))
        # Above its own line's start, with a gap, beginning just past the source node.
        assert edge.label_y + LABEL_H <= y1 - LABEL_GAP + 0.5
        assert x1 < edge.label_x and edge.label_w >= len(edge.label) * 5
    assert len(set(starts)) == len(starts)  # each edge leaves from its own port
    for label in labels:
        assert not any(overlap(label, n) for n in nodes)
    for a, b in itertools.combinations(labels, 2):
        assert not overlap(a, b)
    # No label covers where another edge leaves its node (the level part of its line).
    for label, (x1, y1) in itertools.product(labels, starts):
        assert not overlap(label, (x1, y1 - 0.75, 40, 1.5))
