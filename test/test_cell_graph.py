"""The cell graph over real ROS 2: runner, nodes and recording (its fault drills, a killed
cell among them, are in test_fault_drills.py)."""

import os
import threading
import time
from pathlib import Path

import pytest

from conftest import read_bags_both_ways
from qtopt_collector.bag_recorder import read_episodes
from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.episode_driver import EpisodeDriverConfig, first_episode_seed
from qtopt_collector.graph import CellGraphConfig, NodeSpec, declared_names, sim_cell_graph
from qtopt_collector.ros.runner import GraphRunner, run_episodes
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_policy.model_file import read_model_info, termination_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def start_sim_graph(tmp_path: Path, cells: int, timeout_s: float = 60.0,
                    **kwargs) -> GraphRunner:
    """Start ``cells`` simulated cells (bags under ``tmp_path / "bags"``) and what ``kwargs``
    add to their CellGraphConfig, e.g. a served policy, whose episodes end by the rule its
    model records, as the commands run it."""
    if kwargs.get("model_path") and "episode" not in kwargs:
        kwargs["episode"] = EpisodeConfig.ending_by(
            termination_for(read_model_info(kwargs["model_path"])))
    config = CellGraphConfig(cells=cells, out_dir=str(tmp_path / "bags"), timeout_s=timeout_s,
                             sim=SimCellConfig(min_objects=2, max_objects=4), **kwargs)
    runner = GraphRunner(sim_cell_graph(config), dict(os.environ), tmp_path / "logs")
    runner.start()
    return runner


def _assert_live_graph_shows(specs: list[NodeSpec], timeout_s: float = 30.0) -> None:
    """Every topic, service and action ``specs`` declare is on the running graph (this test's
    domain) with the declared type: the description is the graph (docs/architecture.md)."""
    import rclpy
    from rclpy.action import get_action_names_and_types
    from rclpy.context import Context

    expected = declared_names(specs)
    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("graph_description_check", context=context)
        deadline = time.monotonic() + timeout_s
        while True:  # discovery of a new node's peers takes a moment
            live: dict[tuple[str, str], set[str]] = {}
            for kind, names in (("topic", node.get_topic_names_and_types()),
                                ("service", node.get_service_names_and_types()),
                                ("action", get_action_names_and_types(node))):
                for name, types in names:
                    live[(kind, name)] = set(types)
            missing = {key: types for key, types in expected.items()
                       if not types <= live.get(key, set())}
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert not missing, f"declared but not live (declared types): {missing}; live: {live}"


def test_two_cells_record_complete_episodes(ros_domain, tmp_path):
    runner = start_sim_graph(tmp_path, cells=2)
    try:
        stats = run_episodes(runner, ["cell0", "cell1"], 4, seed=100, progress=False)
    finally:
        runner.stop()
    assert stats.episodes == 4 and stats.retried == 0
    episodes = list(read_episodes(tmp_path / "bags"))
    assert sorted(e.episode_id for e in episodes) == sorted(r[0] for r in stats.results)
    assert {e.cell_id for e in episodes} == {"cell0", "cell1"}
    for e in episodes:
        assert e.steps[-1].done and e.ground_truth is not None
        assert e.steps[0].observation.image.shape == (72, 72, 3)
        assert e.policy_name == "scripted" and len(e.object_ids) >= 2
    project, independent = read_bags_both_ways(tmp_path / "bags")
    assert sorted(independent) == sorted(project) == sorted(e.episode_id for e in episodes)


def export_untrained_model(path: Path, version: int = 3) -> Path:
    """A seeded, untrained sim-preset Q-network as TorchScript for the policy node."""
    import torch

    from qtopt_policy.cem import CEMConfig
    from qtopt_policy.qnetwork import PRESETS, QNetwork
    from qtopt_policy.spec import ActionBounds
    from qtopt_policy.torchscript_model import ModelMetadata, export_model

    torch.manual_seed(0)
    export_model(QNetwork(PRESETS["sim"]).eval(), path,
                 ModelMetadata("sim", PRESETS["sim"], ActionBounds(), CEMConfig(), version, 10))
    return path


def test_learned_policy_episodes_go_through_the_policy_node(ros_domain, tmp_path):
    import math

    model = export_untrained_model(tmp_path / "q.pt")
    runner = start_sim_graph(tmp_path, cells=1, policy="noisy", model_path=str(model))
    try:
        stats = run_episodes(runner, ["cell0"], 2, seed=3, progress=False)
        # The description matches what runs: cell and policy node, after real episodes.
        _assert_live_graph_shows([p.spec for p in runner.processes])
    finally:
        runner.stop()
    assert stats.episodes == 2
    for episode in read_episodes(tmp_path / "bags"):
        assert episode.policy_name == "noisy" and episode.model_version == 3
        greedy_steps = [s for s in episode.steps if not math.isnan(s.q_value)]
        assert greedy_steps and all(0.0 <= s.q_value <= 1.0 for s in greedy_steps)


def test_the_ros_graph_and_the_in_process_loop_run_the_same_episode(ros_domain, tmp_path):
    import numpy as np

    from qtopt_collector.episode import run_episode
    from qtopt_collector.sim_cell import SimCell
    from qtopt_policy.policies import ScriptedGraspPolicy
    from qtopt_policy.spec import ActionBounds

    runner = start_sim_graph(tmp_path, cells=1)
    try:
        run_episodes(runner, ["cell0"], 1, seed=21, progress=False)
    finally:
        runner.stop()
    (via_ros,) = read_episodes(tmp_path / "bags")
    cell = SimCell(SimCellConfig(min_objects=2, max_objects=4))
    try:
        local = run_episode(cell, ScriptedGraspPolicy(ActionBounds()), 21,
                            CellGraphConfig().episode, cell_id="cell0")  # the graph's rule
    finally:
        cell.close()
    assert via_ros.episode_id == local.episode_id and via_ros.object_ids == local.object_ids
    assert len(via_ros.steps) == len(local.steps)
    for a, b in zip(via_ros.steps, local.steps, strict=True):
        np.testing.assert_array_equal(a.observation.image, b.observation.image)
        assert a.observation.height_to_bottom == b.observation.height_to_bottom
    assert (via_ros.success, via_ros.ground_truth) == (local.success, local.ground_truth)


def test_a_late_recorder_loses_no_episode(ros_domain, tmp_path):
    config = CellGraphConfig(cells=1, out_dir=str(tmp_path / "bags"),
                             sim=SimCellConfig(min_objects=2, max_objects=4))
    specs = sim_cell_graph(config)
    devices = GraphRunner([s for s in specs if s.executable != "recorder_node"],
                          dict(os.environ), tmp_path / "logs")
    recorder = GraphRunner([s for s in specs if s.executable == "recorder_node"],
                           dict(os.environ), tmp_path / "logs")
    devices.start()
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        stats=run_episodes(devices, ["cell0"], 3, seed=40, progress=False, max_lost=0)))
    worker.start()
    try:
        time.sleep(8.0)  # well after the first episode finished
        recorder.start()  # from this (long-lived) thread: see runner._die_with_parent
        worker.join(timeout=300)
    finally:
        devices.stop()
        recorder.stop()
    stats = result["stats"]
    assert stats.episodes == 3 and stats.retried == 0
    assert sorted(e.episode_id for e in read_episodes(tmp_path / "bags")) == [
        "cell0-40", "cell0-41", "cell0-42"]


def test_the_episode_driver_makes_a_launched_graph_collect_on_its_own(ros_domain, tmp_path):
    """What ``ros2 launch qtopt_collector cell.launch.py cells:=2 episodes:=3`` starts: the
    cells and the episode driver, which sends the goals, one per cell at a time, and exits
    (ending the launch) once the episodes are recorded."""
    config = CellGraphConfig(cells=2, out_dir=str(tmp_path / "bags"),
                             sim=SimCellConfig(min_objects=2, max_objects=4),
                             driver=EpisodeDriverConfig(episodes=3, seed=60))
    runner = GraphRunner(sim_cell_graph(config), dict(os.environ), tmp_path / "logs")
    runner.start()
    try:
        driver = next(p for p in runner.processes if p.spec.executable == "episode_driver_node")
        assert driver.proc.wait(timeout=300) == 0, driver.log_path.read_text()
    finally:
        runner.stop()
    episodes = list(read_episodes(tmp_path / "bags"))
    first = first_episode_seed(60)  # the driver's seed is the run's
    assert sorted(int(e.episode_id.rsplit("-", 1)[1]) for e in episodes) == [
        first, first + 1, first + 2]
    assert {e.cell_id for e in episodes} <= {"cell0", "cell1"}
    assert all(e.steps[-1].done for e in episodes)
    log = driver.log_path.read_text()
    assert "collecting 3 episodes on 2 cells" in log and "done: 3/3 episodes" in log
    assert "Traceback" not in log and "Exception ignored" not in log  # a clean exit
