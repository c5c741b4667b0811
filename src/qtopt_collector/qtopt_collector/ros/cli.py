"""``qtopt cell``: collect episodes with simulated cells through the ROS 2 graph."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.graph import CellGraphConfig, cell_namespace, sim_cell_graph
from qtopt_collector.ros.runner import run_graph
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_policy.policies import LOCAL_POLICIES, SERVED_POLICIES


def add_cell_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sim", action="store_true", default=True,
                        help="simulated cells (PyBullet); the only backend the runner starts")
    parser.add_argument("--policy", default="scripted",
                        choices=LOCAL_POLICIES + SERVED_POLICIES)
    parser.add_argument("--model", default="", help="TorchScript model for greedy/noisy")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--cells", type=int, default=2)
    parser.add_argument("--out", default="data", help="folder for the rosbag2 bags")
    parser.add_argument("--objects", default="train", choices=["train", "test"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scripted-termination", action="store_true")


def run_cell_command(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    config = CellGraphConfig(
        cells=args.cells, policy=args.policy, out_dir=str(out),
        episode=EpisodeConfig(scripted_termination=args.scripted_termination),
        model_path=args.model,
        sim=dataclasses.replace(SimCellConfig(), object_split=args.objects),
    )
    start = time.monotonic()
    stats = run_graph(sim_cell_graph(config), [cell_namespace(i) for i in range(config.cells)],
                      args.episodes, out / "logs", seed=args.seed)
    elapsed = time.monotonic() - start
    print(f"{stats.episodes} episodes ({args.policy}, {args.objects} objects) on "
          f"{config.cells} cells in {elapsed:.0f} s: success (image subtraction) "
          f"{stats.success_rate:.1%}, {stats.steps / max(stats.episodes, 1):.1f} steps per "
          f"episode, {stats.retried} lost and rerun; bags in {out}")
    return 0
