"""A version's lineage as a layered graph, laid out here in Python so the page draws it
as inline SVG without JavaScript.

Ancestors sit in columns to the left (parents next to the version), descendants to the
right; a version reached at several depths takes its deepest column, so every edge runs
left to right. Within a column, nodes are ordered by the mean position of their
neighbours in the column before (one barycentre sweep), which keeps most edges short.

Edges leave a node's right side and enter the left side at ports spread over its height
(ordered by where the other end sits, so edges do not cross at a node). An edge's label
sits at its source end, just above its own line where the curve is still level, on a
background box: it never lies on a line or a node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from registry.lifecycle.results import LineageNode, LineageReport

MAX_NODES = 300
NODE_W = 190
NODE_H = 40
COL_GAP = 160  # room for a label at the source end of each edge
ROW_GAP = 26
MARGIN = 20
LABEL_H = 14  # the label's box: 11px text (ui.css) and padding
LABEL_CHAR_W = 6.4  # an estimate of one character's width at 11px
LABEL_GAP = 2  # between a label's box and its line


@dataclass
class GraphNode:
    ref: str
    present: bool
    status: str | None
    layer: int
    current: bool = False
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class GraphEdge:
    source: str  # the parent
    target: str  # the version made from it
    operation: str
    weight: float | None
    # Filled by the layout: the path, and the label's box (x, y: its top left corner).
    path: str = ""
    label_x: float = 0.0
    label_y: float = 0.0
    label_w: float = 0.0

    @property
    def label(self) -> str:
        return self.operation if self.weight is None else f"{self.operation} ×{self.weight:g}"


@dataclass
class LineageGraph:
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0
    truncated: bool = False


def build_graph(report: LineageReport) -> LineageGraph:
    root = report.ref
    nodes: dict[str, GraphNode] = {root: GraphNode(root, True, None, 0, current=True)}
    edges: dict[tuple[str, str], GraphEdge] = {}
    truncated = False

    def visit(node: LineageNode, depth: int, below: str, upwards: bool) -> None:
        nonlocal truncated
        if node.ref not in nodes and len(nodes) >= MAX_NODES:
            truncated = True
            return
        layer = -depth if upwards else depth
        known = nodes.get(node.ref)
        if known is None:
            nodes[node.ref] = GraphNode(node.ref, node.present, node.status, layer)
        elif not known.current and abs(layer) > abs(known.layer) and (layer < 0) == upwards:
            known.layer = layer
        source, target = (node.ref, below) if upwards else (below, node.ref)
        edges.setdefault((source, target), GraphEdge(source, target, node.operation, node.weight))
        for link in node.links:
            visit(link, depth + 1, node.ref, upwards)

    for parent in report.ancestors:
        visit(parent, 1, root, True)
    for child in report.descendants:
        visit(child, 1, root, False)
    graph = LineageGraph(truncated=truncated)
    _layout(graph, list(nodes.values()), list(edges.values()))
    return graph


def _layout(graph: LineageGraph, nodes: list[GraphNode], edges: list[GraphEdge]) -> None:
    low = min(n.layer for n in nodes)
    columns: dict[int, list[GraphNode]] = {}
    for node in sorted(nodes, key=lambda n: n.ref):
        columns.setdefault(node.layer - low, []).append(node)
    neighbours: dict[str, list[str]] = {}
    for edge in edges:
        neighbours.setdefault(edge.source, []).append(edge.target)
        neighbours.setdefault(edge.target, []).append(edge.source)
    position: dict[str, float] = {}
    for index in sorted(columns):
        column = columns[index]

        def barycentre(node: GraphNode) -> float:
            placed = [position[n] for n in neighbours.get(node.ref, []) if n in position]
            return sum(placed) / len(placed) if placed else 0.0

        if index > 0:
            column.sort(key=lambda n: (barycentre(n), n.ref))
        for row, node in enumerate(column):
            position[node.ref] = row
    tallest = max(len(c) for c in columns.values())
    by_ref: dict[str, GraphNode] = {}
    for index, column in columns.items():
        # Centre each column vertically against the tallest one.
        offset = (tallest - len(column)) * (NODE_H + ROW_GAP) / 2
        for row, node in enumerate(column):
            node.x = MARGIN + index * (NODE_W + COL_GAP)
            node.y = MARGIN + offset + row * (NODE_H + ROW_GAP)
            by_ref[node.ref] = node
    start = _ports(edges, by_ref, outgoing=True)
    end = _ports(edges, by_ref, outgoing=False)
    placed_edges = []
    for edge in edges:
        a, b = by_ref[edge.source], by_ref[edge.target]
        x1, y1 = a.x + NODE_W, start[(edge.source, edge.target)]
        x2, y2 = b.x, end[(edge.source, edge.target)]
        middle = (x1 + x2) / 2
        path = (
            f"M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} {middle:.0f},{y2:.0f} {x2 - 6:.0f},{y2:.0f}"
        )
        width = min(len(edge.label) * LABEL_CHAR_W + 6, COL_GAP - 20)
        placed_edges.append(
            GraphEdge(
                edge.source,
                edge.target,
                edge.operation,
                edge.weight,
                path,
                x1 + 4,
                y1 - LABEL_GAP - LABEL_H,
                width,
            )
        )
    graph.nodes = sorted(by_ref.values(), key=lambda n: (n.x, n.y))
    # Upper edges first: a line leaving a port above another edge's label, then falling,
    # is painted before that label's box, which covers it.
    graph.edges = sorted(placed_edges, key=lambda e: (by_ref[e.source].x, e.label_y, e.target))
    graph.width = MARGIN * 2 + len(columns) * NODE_W + (len(columns) - 1) * COL_GAP
    graph.height = MARGIN * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP


def _ports(
    edges: list[GraphEdge], by_ref: dict[str, GraphNode], *, outgoing: bool
) -> dict[tuple[str, str], float]:
    """Where each edge meets its node: the node's edges on that side, ordered by the
    other end's height, spread evenly over the node's height."""
    sides: dict[str, list[GraphEdge]] = {}
    for edge in edges:
        sides.setdefault(edge.source if outgoing else edge.target, []).append(edge)
    found: dict[tuple[str, str], float] = {}
    for ref, side in sides.items():
        node = by_ref[ref]
        side.sort(key=lambda e: (by_ref[e.target if outgoing else e.source].y, e.source, e.target))
        # Far enough apart that each label fits between its line and the one above;
        # centred on the node's middle.
        step = max(NODE_H / (len(side) + 1), LABEL_H + 2 * LABEL_GAP)
        first = node.y + NODE_H / 2 - step * (len(side) - 1) / 2
        for index, edge in enumerate(side):
            found[(edge.source, edge.target)] = first + step * index
    return found
