"""The simulated training graph as data (docs/architecture.md, "Conventions"): cells with the
learned policy served by the policy node, and the learner node fed by every cell's live episodes
(Sec. 4.3, App. F.3). ``ros2 launch qtopt_learner sim.launch.py`` and the main job's
collect-while-train loop start this graph."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.episode_driver import CollectionStats, first_episode_seed
from qtopt_collector.graph import (
    CellGraphConfig,
    Endpoint,
    Interfaces,
    NodeSpec,
    cell_namespace,
    sim_cell_graph,
)
from qtopt_collector.ros.runner import run_graph
from qtopt_learner.collection import CollectionConfig, CollectionSchedule
from qtopt_learner.learner_config import LearnerConfig
from qtopt_learner.learner_node import LearnerNodeConfig
from qtopt_msgs.msg import Episode, ModelUpdate, TrainingStatus
from qtopt_policy.model_file import ModelFileInfo, termination_for
from qtopt_policy.ros_names import EPISODES_TOPIC, MODEL_UPDATES_TOPIC, TRAINING_STATUS_TOPIC
from qtopt_policy.ros_params import config_to_parameters


def learner_node_spec(config: LearnerNodeConfig) -> NodeSpec:
    # Empty arrays carry no type on a command line; their defaults are empty anyway.
    parameters = {k: v for k, v in config_to_parameters(config).items() if v != []}
    interfaces = Interfaces(
        publishes=(Endpoint.of(MODEL_UPDATES_TOPIC, ModelUpdate),
                   Endpoint.of(TRAINING_STATUS_TOPIC, TrainingStatus)),
        subscribes=tuple(Endpoint.of(t, Episode) for t in config.episode_topics))
    return NodeSpec("qtopt_learner", "learner_node", "qtopt_learner.learner_node", "",
                    "learner", parameters, interfaces)


def sim_training_graph(cells: CellGraphConfig, learner: LearnerConfig | LearnerNodeConfig
                       ) -> list[NodeSpec]:
    """``cells`` (policy greedy or noisy, served from ``cells.model_path``) plus a learner
    node that trains on their episodes and announces each export to the policy node. An
    episode driver (``cells.driver``) does not end this graph when its episodes are in: the
    learner trains on."""
    topics = tuple(f"/{cell_namespace(i)}/{EPISODES_TOPIC}" for i in range(cells.cells))
    node = learner if isinstance(learner, LearnerNodeConfig) else LearnerNodeConfig(
        learner=learner)
    return [dataclasses.replace(s, required=False) for s in sim_cell_graph(cells)] + [
        learner_node_spec(dataclasses.replace(node, episode_topics=topics))]


def in_models_mdp(cells: CellGraphConfig, learner: LearnerConfig, info: ModelFileInfo | None
                  ) -> tuple[CellGraphConfig, LearnerConfig]:
    """``cells`` and ``learner`` fine-tuning the model ``info`` describes in its own MDP: the
    cells end episodes by the rule it records, the Bellman targets score the stop only under
    the learned one, and the exports record the rule."""
    rule = termination_for(info)
    cem = dataclasses.replace(learner.updater.cem, learned_termination=rule == "learned")
    return (dataclasses.replace(cells, episode=EpisodeConfig.ending_by(rule)),
            dataclasses.replace(learner, termination=rule,
                                updater=dataclasses.replace(learner.updater, cem=cem)))


def wait_for_status(done: Callable[[TrainingStatus], bool], what: str,
                    stall_s: float = 300.0) -> TrainingStatus:
    """Block until a TrainingStatus of the learner node satisfies ``done``; give up when no
    status came for ``stall_s`` or the learner's step stood still that long."""
    context = Context()
    rclpy.init(context=context)
    last: list[TrainingStatus] = []
    try:
        node = rclpy.create_node("learner_watch", context=context)
        node.create_subscription(TrainingStatus, f"/{TRAINING_STATUS_TOPIC}", last.append, 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        progress, moved = None, time.monotonic()
        while not last or not done(last[-1]):
            if last and (last[-1].step, last[-1].online_episodes_received) != progress:
                progress, moved = (last[-1].step, last[-1].online_episodes_received), \
                    time.monotonic()
            if time.monotonic() - moved > stall_s:
                seen = (f"step {last[-1].step}, {last[-1].online_episodes_received} live "
                        "episodes received") if last else "no status"
                raise TimeoutError(f"learner node: still waiting for {what} after "
                                   f"{stall_s:.0f} s without progress ({seen})")
            executor.spin_once(timeout_sec=0.1)
        return last[-1]
    finally:
        rclpy.shutdown(context=context)


def wait_for_learner(episodes: int = 0, timeout_s: float = 300.0) -> TrainingStatus:
    """Block until the learner node has received at least ``episodes`` live episodes: 0 waits
    until it is up (before the cells start, so it misses none), the number run waits until
    it has them all (before the graph stops)."""
    return wait_for_status(lambda s: s.online_episodes_received >= episodes,
                           f"{episodes} live episodes", timeout_s)


@dataclass(frozen=True)
class ConcurrentStats:
    collection: CollectionStats
    chosen: dict[str, int]  # episodes per collecting policy


def run_concurrent_graph(cells: CellGraphConfig, learner: LearnerConfig,
                         collection: CollectionConfig, episodes: int, log_dir: Path,
                         online_dir: Path, seed: int = first_episode_seed(0),
                         progress: bool = True) -> ConcurrentStats:
    """QT-Opt's collect-while-train loop (App. C, F.1): ``cells`` record ``episodes`` (seeds
    from ``seed`` on) into ``online_dir`` while the learner node trains on them live (after
    reloading those already there). Each goal's policy follows a :class:`CollectionSchedule`
    driven by the learner's status, which also holds new goals back while the learner lags.
    Once every episode reached the learner, the graph runs on until the trainer has used the
    steps its balancer allows (or reached its last step), then stops."""
    node = LearnerNodeConfig(online_dir=str(online_dir), persist_online=False, learner=learner)
    schedule = CollectionSchedule(collection, learner.fine_tuning.steps_per_transition)

    def watch(driver: Node) -> None:
        driver.create_subscription(
            TrainingStatus, f"/{TRAINING_STATUS_TOPIC}",
            lambda s: schedule.observe(s.step, s.model_version, s.online_transitions,
                                       s.finished), 10)

    def drain(stats: CollectionStats) -> None:
        wait_for_learner(stats.episodes)
        wait_for_status(lambda s: s.finished or s.waiting_for_data, "training to catch up")

    stats = run_graph(sim_training_graph(cells, node),
                      [cell_namespace(i) for i in range(cells.cells)], episodes, log_dir,
                      seed=seed, progress=progress, after_start=wait_for_learner,
                      before_stop=drain, policy=schedule.choose, watch=watch,
                      ready=schedule.ready)
    return ConcurrentStats(stats, dict(schedule.chosen))


def run_training_graph(cells: CellGraphConfig, learner: LearnerConfig, episodes: int,
                       log_dir: Path, seed: int = first_episode_seed(0),
                       progress: bool = True) -> CollectionStats:
    """Run the training graph for ``episodes`` episodes (seeds from ``seed`` on) with the
    project's runner; the cells start once the learner node is up and the graph stops once it
    has every episode."""
    return run_graph(sim_training_graph(cells, learner),
                     [cell_namespace(i) for i in range(cells.cells)], episodes, log_dir,
                     seed=seed, progress=progress, after_start=wait_for_learner,
                     before_stop=lambda stats: wait_for_learner(stats.episodes))
