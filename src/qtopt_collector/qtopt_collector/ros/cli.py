"""``qtopt cell``: collect episodes with simulated cells through the ROS 2 graph.

The parser and the checks import nothing heavy; the graph's modules load once the arguments
are known to be good.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qtopt_policy.cli_arguments import add_seed_argument
from qtopt_policy.names import (
    DEFAULT_TERMINATION,
    LOCAL_POLICIES,
    OBJECT_SPLITS,
    SERVED_POLICIES,
    TERMINATIONS,
    UNRECORDED_TERMINATION,
)
from qtopt_policy.usage import (
    UsageError,
    check_folder,
    check_model,
    config_field_type,
    positive_int,
)

if TYPE_CHECKING:
    from qtopt_collector.graph import CellGraphConfig
    from qtopt_collector.sim_cell import SimCellConfig
    from qtopt_policy.model_file import ModelFileInfo

CELL_GRAPH = "qtopt_collector.graph:CellGraphConfig"


def add_cell_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sim", action="store_true", default=True,
                        help="simulated cells (PyBullet); the only backend the runner starts")
    parser.add_argument("--policy", default="scripted", choices=LOCAL_POLICIES + SERVED_POLICIES,
                        help="the cells' policy: scripted ones run in the cell, greedy and "
                        "noisy are CEM over --model, served by the policy node")
    parser.add_argument("--model", default="", metavar="PATH",
                        help="TorchScript model for --policy greedy or noisy (e.g. a run "
                        "folder's model.pt); the cells render the camera it was trained with")
    parser.add_argument("--episodes", type=positive_int, default=100,
                        help="episodes to record, over all cells")
    add_cells_argument(parser)
    parser.add_argument("--out", default="data", metavar="DIR",
                        help="folder for the rosbag2 bags (and the nodes' logs/)")
    parser.add_argument("--objects", default="train", choices=OBJECT_SPLITS,
                        help="object split the bins are filled from")
    add_seed_argument(parser, "qtopt_collector.episode_driver:EpisodeDriverConfig")
    parser.add_argument("--termination", default="", choices=TERMINATIONS,
                        help="what ends an episode: learned, the policy's terminate action; "
                        "scripted, Algorithm 2; close, the close is the grasp attempt. "
                        "Default: the rule --model was trained under, as it records "
                        f"({UNRECORDED_TERMINATION} when it records none); {DEFAULT_TERMINATION}, "
                        "the main job's, without a model")


def add_cells_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cells", type=config_field_type(CELL_GRAPH, "cells"), default=2,
                        help="simulated cells")


def sim_for_model(sim: SimCellConfig, info: ModelFileInfo | None) -> SimCellConfig:
    """``sim`` rendering the camera of the model ``--model`` names (a checked file's ``info``;
    None: no model); UsageError for a model whose input is larger than the frames."""
    if info is None:
        return sim
    try:
        return sim.for_model(info)
    except ValueError as err:
        raise UsageError(f"--model {err}") from err


def check_cell_arguments(args: argparse.Namespace) -> ModelFileInfo | None:
    """Raise UsageError for arguments ``qtopt cell`` cannot run with, before it starts any
    node: a served policy without a whole model file, a model with a local policy, an
    output path that is a file. Returns the model file's info (None: no model)."""
    if args.policy in SERVED_POLICIES and not args.model:
        raise UsageError(f"--policy {args.policy}: needs --model; expected the path of a "
                         "TorchScript model (or a --policy of " + ", ".join(LOCAL_POLICIES) + ")")
    if args.policy in LOCAL_POLICIES and args.model:
        raise UsageError(f"--model {args.model}: unused by --policy {args.policy}; expected "
                         "--policy greedy or noisy, or no --model")
    info = check_model("--model", args.model) if args.model else None
    check_folder("--out", args.out)
    return info


def cell_graph_config(args: argparse.Namespace, info: ModelFileInfo | None) -> CellGraphConfig:
    """The cells ``qtopt cell`` starts: the camera and episode rule of the model ``--model``
    (its ``info``) unless told otherwise."""
    from qtopt_collector.episode import EpisodeConfig
    from qtopt_collector.graph import CellGraphConfig
    from qtopt_collector.sim_cell import SimCellConfig
    from qtopt_policy.model_file import termination_for

    return CellGraphConfig(
        cells=args.cells, policy=args.policy, out_dir=str(Path(args.out).resolve()),
        episode=EpisodeConfig.ending_by(args.termination or termination_for(info)),
        model_path=str(Path(args.model).resolve()) if args.model else "",
        sim=sim_for_model(SimCellConfig(object_split=args.objects), info),
    )


def run_cell_command(args: argparse.Namespace) -> int:
    info = check_cell_arguments(args)
    from qtopt_collector.episode_driver import first_episode_seed
    from qtopt_collector.graph import cell_namespace, sim_cell_graph
    from qtopt_collector.ros.runner import run_graph

    config = cell_graph_config(args, info)
    out = Path(config.out_dir)
    start = time.monotonic()
    stats = run_graph(sim_cell_graph(config), [cell_namespace(i) for i in range(config.cells)],
                      args.episodes, out / "logs", seed=first_episode_seed(args.seed))
    elapsed = time.monotonic() - start
    print(f"{stats.episodes} episodes ({args.policy}, {args.objects} objects) on "
          f"{config.cells} cells in {elapsed:.0f} s: success (image subtraction) "
          f"{stats.success_rate:.1%}, {stats.steps / max(stats.episodes, 1):.1f} steps per "
          f"episode, {stats.retried} lost and rerun; bags in {out}")
    return 0
