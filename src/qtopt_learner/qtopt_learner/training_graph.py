"""The simulated training graph as data (DESIGN.md rule 7): cells with the learned policy
served by the policy node, and the learner node fed by every cell's live episodes (Sec. 4.3,
App. F.3). ``launch/sim.launch.py`` and the main job's fine-tuning phase start this graph."""

from __future__ import annotations

import time
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from qtopt_collector.graph import CellGraphConfig, NodeSpec, cell_namespace, sim_cell_graph
from qtopt_collector.runner import CollectionStats, run_graph
from qtopt_learner.learner_config import LearnerConfig
from qtopt_learner.learner_node import LearnerNodeConfig
from qtopt_msgs.msg import TrainingStatus
from qtopt_policy.ros_params import config_to_parameters


def learner_node_spec(config: LearnerNodeConfig) -> NodeSpec:
    # Empty arrays carry no type on a command line; their defaults are empty anyway.
    parameters = {k: v for k, v in config_to_parameters(config).items() if v != []}
    return NodeSpec("qtopt_learner", "learner_node", "qtopt_learner.learner_node", "",
                    "learner", parameters)


def sim_training_graph(cells: CellGraphConfig, learner: LearnerConfig) -> list[NodeSpec]:
    """``cells`` (policy greedy or noisy, served from ``cells.model_path``) plus a learner
    node that trains on their episodes and announces each export to the policy node."""
    topics = tuple(f"/{cell_namespace(i)}/episodes" for i in range(cells.cells))
    return sim_cell_graph(cells) + [
        learner_node_spec(LearnerNodeConfig(episode_topics=topics, learner=learner))]


def wait_for_learner(episodes: int = 0, timeout_s: float = 300.0) -> TrainingStatus:
    """Block until the learner node publishes a TrainingStatus with at least ``episodes`` live
    episodes received: 0 waits until it is up (before the cells start, so it misses none),
    the number run waits until it has them all (before the graph stops)."""
    context = Context()
    rclpy.init(context=context)
    last: list[TrainingStatus] = []
    try:
        node = rclpy.create_node("learner_watch", context=context)
        node.create_subscription(TrainingStatus, "/training_status", last.append, 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + timeout_s
        while not last or last[-1].online_episodes_received < episodes:
            if time.monotonic() > deadline:
                got = last[-1].online_episodes_received if last else "no status"
                raise TimeoutError(f"learner node: {got} of {episodes} live episodes received "
                                   f"after {timeout_s:.0f} s")
            executor.spin_once(timeout_sec=0.1)
        return last[-1]
    finally:
        rclpy.shutdown(context=context)


def run_training_graph(cells: CellGraphConfig, learner: LearnerConfig, episodes: int,
                       log_dir: Path, seed: int = 0, progress: bool = True) -> CollectionStats:
    """Run the training graph for ``episodes`` episodes with the project's runner; the cells
    start once the learner node is up and the graph stops once it has every episode."""
    return run_graph(sim_training_graph(cells, learner),
                     [cell_namespace(i) for i in range(cells.cells)], episodes, log_dir,
                     seed=seed, progress=progress, after_start=wait_for_learner,
                     before_stop=lambda stats: wait_for_learner(stats.episodes))
