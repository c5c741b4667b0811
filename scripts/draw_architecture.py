#!/usr/bin/env python3
"""Draw docs/architecture.png from the graph description (qtopt_collector.graph).

    .venv/bin/python scripts/draw_architecture.py [OUT.png]

The graph is the simulated training graph that ``ros2 launch qtopt_learner sim.launch.py`` and
the main job start: one cell collecting with pi_noisy served by the policy node, and the learner
node (without the launch's episode driver: the main job sends the goals itself). The figure
shows the topics, services and actions every NodeSpec declares (qtopt_collector.graph).
"""

from __future__ import annotations

import sys
from pathlib import Path

from qtopt_collector.graph import CellGraphConfig, NodeSpec, missing_providers
from qtopt_collector.graph_figure import draw_graph
from qtopt_learner.app.training_graph import sim_training_graph
from qtopt_learner.learner_node import LearnerNodeConfig

ROOT = Path(__file__).resolve().parents[1]


def architecture_graph() -> list[NodeSpec]:
    """The training graph with one cell, every NodeSpec declaring its interfaces."""
    cells = CellGraphConfig(cells=1, policy="noisy", model_path="runs/<exp>/model.pt")
    return sim_training_graph(cells, LearnerNodeConfig())


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "docs" / "architecture.png"
    specs = architecture_graph()
    for problem in missing_providers(specs):
        print(f"warning: {problem}", file=sys.stderr)
    fig = draw_graph(specs, "drawn by scripts/draw_architecture.py from qtopt_collector.graph "
                            "(sim training graph, one cell, policy noisy)")
    # No software version in the file: the PNG changes only when the graph does.
    fig.savefig(out, metadata={"Software": None})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
