"""The graph description drawn as a data-flow figure.

``docs/architecture.png`` comes from the same :class:`~qtopt_collector.graph.NodeSpec` list the
launch files and the runner start (``scripts/draw_architecture.py``): one box per process in
layered columns (devices, success detector, episode runner, recorder and policy node, learner),
one arrow per pair of processes and kind, labelled with the names and types of the topics,
services or actions between them. What nothing in the graph consumes or provides (the runner's
RunEpisode goals, status topics for tools) goes to or comes from a box for the outside.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch

from qtopt_collector.graph import KIND_OF_ROLE, PROVIDER_OF_ROLE, NodeSpec

# Column and row (in units of _ROW within a cell's band) of each executable; unknown ones go
# to column 2, stacked below.
_PLACE = {
    "sim_cell_node": (0, 0.0), "arm_node": (0, 1.0), "gripper_node": (0, 0.0),
    "camera_node": (0, -1.0), "success_node": (1, -1.2), "episode_runner_node": (2, 0.0),
    "recorder_node": (3, 0.9), "policy_node": (3, -1.2), "learner_node": (4, 0.0),
}
_ROLE_TEXT = {
    "sim_cell_node": "camera, arm, gripper, sim (PyBullet)",
    "arm_node": "arm (ros2_control / Servo)", "gripper_node": "gripper",
    "camera_node": "camera driver adapter", "success_node": "drop test (App. D.3)",
    "episode_runner_node": "Algorithm 1", "recorder_node": "rosbag2 (MCAP)",
    "policy_node": "CEM over TorchScript Q",
    "learner_node": "replay, Bellman updaters,\ntraining loop, export",
}
_COLUMN_W, _ROW, _CELL_H = 3.8, 1.4, 4.0  # data units
_BOX_W, _BOX_H = 2.5, 0.8
_STYLE = {  # kind -> (line style, colour, legend text)
    "topic": ("-", "tab:blue", "topic: publisher -> subscriber"),
    "service": ("--", "tab:orange", "service: client -> server"),
    "action": (":", "tab:green", "action: client -> server"),
}
OUTSIDE = "outside"  # the key of the box for what lies outside the graph


@dataclass(frozen=True)
class Edge:
    source: str  # node key, or OUTSIDE
    target: str
    kind: str  # "topic", "service" or "action"
    labels: tuple[str, ...]  # "name [Type]", sorted


def node_key(spec: NodeSpec) -> str:
    """A process's name in the figure: its namespace and node (or executable) name."""
    return f"/{spec.namespace}/{spec.name or spec.executable}".replace("//", "/")


def graph_edges(specs: list[NodeSpec]) -> list[Edge]:
    """The data flow between processes: publisher -> subscriber, client -> server; endpoints
    without a peer in ``specs`` connect to OUTSIDE. One edge per (source, target, kind)."""
    providers: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    consumers: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for spec in specs:
        for role, endpoint in spec.interfaces.items():
            entry = (node_key(spec), endpoint.type)
            key = (KIND_OF_ROLE[role], endpoint.resolve(spec.namespace))
            (consumers if role in PROVIDER_OF_ROLE else providers)[key].append(entry)
    grouped: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for key in sorted(set(providers) | set(consumers)):
        kind, name = key
        # Flow runs from publisher to subscriber, and from client to server.
        upstream, downstream = ((providers, consumers) if kind == "topic"
                                else (consumers, providers))
        sources = upstream.get(key) or [(OUTSIDE, "")]
        targets = downstream.get(key) or [(OUTSIDE, "")]
        for source, source_type in sources:
            for target, target_type in targets:
                short = (source_type or target_type).rsplit("/", 1)[-1]
                grouped[(source, target, kind)].add(f"{_short_name(name)} [{short}]")
    return [Edge(s, t, k, tuple(sorted(labels))) for (s, t, k), labels in sorted(grouped.items())]


def _short_name(name: str) -> str:
    """A cell's names without the cell's namespace: the figure shows one cell's shape."""
    parts = name.split("/")
    return "/".join(parts[2:]) if len(parts) > 2 and parts[1].startswith("cell") else name


def _positions(specs: list[NodeSpec]) -> dict[str, tuple[float, float]]:
    cells = sorted({s.namespace for s in specs if s.namespace})
    band = {ns: -i * _CELL_H for i, ns in enumerate(cells)}
    fleet_y = sum(band.values()) / len(band) if band else 0.0
    extra: dict[int, int] = defaultdict(int)
    positions = {}
    for spec in specs:
        column, row = _PLACE.get(spec.executable, (2, None))
        if row is None:
            extra[column] += 1
            row = -1.0 - extra[column]
        base = band[spec.namespace] if spec.namespace else fleet_y
        positions[node_key(spec)] = (column * _COLUMN_W, base + row * _ROW)
    return positions


def draw_graph(specs: list[NodeSpec], title: str = "") -> Figure:
    """The data-flow figure of ``specs``: one box per process (gid "node:<key>"), one arrow per
    :func:`graph_edges` edge, one legend line per edge kind. Deterministic for equal input."""
    positions = _positions(specs)
    edges = graph_edges(specs)
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    if any(OUTSIDE in (e.source, e.target) for e in edges):
        positions[OUTSIDE] = ((min(xs) + max(xs)) / 2, max(ys) + 1.6 * _ROW)
    x0, x1 = min(xs) - 0.7 * _BOX_W, max(xs) + 0.7 * _BOX_W
    y0, y1 = min(ys) - 1.2 * _ROW, max(y for _, y in positions.values()) + 0.5 * _ROW
    scale = 0.85  # inches per data unit
    fig = Figure(figsize=((x1 - x0) * scale, (y1 - y0) * scale), dpi=120)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    boxes = {}
    for spec in specs:
        key = node_key(spec)
        executable = "" if key.endswith(f"/{spec.executable}") else f"\n{spec.executable}"
        boxes[key] = _box(ax, positions[key], _BOX_W, f"node:{key}", "#eef3fb", "-",
                          f"{key}{executable}\n{_ROLE_TEXT.get(spec.executable, '')}")
    if OUTSIDE in positions:
        boxes[OUTSIDE] = _box(ax, positions[OUTSIDE], max(xs) - min(xs) + _BOX_W, OUTSIDE,
                              "#f6f6f6", "--", "outside the graph: qtopt_collector.ros.runner "
                              "(episode goals), the main job's status watch, ros2 CLI, viewers")
    pairs = {(e.source, e.target) for e in edges}
    for edge in edges:
        _arrow(ax, edge, positions, boxes, bidirectional=(edge.target, edge.source) in pairs)
    kinds = sorted({e.kind for e in edges}, key=list(_STYLE).index)
    ax.legend(handles=[Line2D([], [], linestyle=_STYLE[k][0], color=_STYLE[k][1],
                              label=_STYLE[k][2]) for k in kinds],
              loc="lower left", fontsize=9, frameon=False)
    if title:
        ax.text(x1 - 0.1, y0 + 0.1, title, fontsize=8, ha="right", va="bottom", color="0.35")
    return fig


def _box(ax, center: tuple[float, float], width: float, gid: str, colour: str, style: str,
         text: str) -> FancyBboxPatch:
    x, y = center
    patch = FancyBboxPatch((x - width / 2, y - _BOX_H / 2), width, _BOX_H,
                           boxstyle="round,pad=0.05", facecolor=colour, edgecolor="0.2",
                           linestyle=style, zorder=2, gid=gid)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=8, zorder=3)
    return patch


def _arrow(ax, edge: Edge, positions, boxes, bidirectional: bool) -> None:
    (sx, sy), (tx, ty) = positions[edge.source], positions[edge.target]
    if OUTSIDE in (edge.source, edge.target):
        # Straight up or down between the node and the wide outside box.
        node_x = tx if edge.source == OUTSIDE else sx
        sx, tx = node_x, node_x
        offset = 0.25 if edge.kind == "topic" else -0.25
        sx, tx = sx + offset, tx + offset
        rad = 0.0
    else:
        rad = 0.3 if bidirectional else 0.08
    style, colour, _ = _STYLE[edge.kind]
    ax.annotate("", xy=(tx, ty), xytext=(sx, sy), zorder=1,
                arrowprops=dict(arrowstyle="-|>", color=colour, linestyle=style, lw=1.4,
                                patchA=boxes[edge.source], patchB=boxes[edge.target],
                                shrinkA=2, shrinkB=2, connectionstyle=f"arc3,rad={rad}"))
    # The middle of arc3's quadratic Bezier curve (equal aspect: data and display agree).
    dx, dy = tx - sx, ty - sy
    mx, my = (sx + tx) / 2 + 0.5 * rad * dy, (sy + ty) / 2 - 0.5 * rad * dx
    if OUTSIDE in (edge.source, edge.target):
        my = (max(sy, ty) - _BOX_H / 2 + min(sy, ty) + _BOX_H / 2) / 2
    ax.text(mx, my, "\n".join(edge.labels), ha="center", va="center", fontsize=7,
            color=colour, zorder=4, bbox=dict(boxstyle="round,pad=0.2", facecolor="white",
                                              edgecolor="none", alpha=0.9))
