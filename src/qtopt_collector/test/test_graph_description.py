"""The graph description that both the launch file and the runner read, and the success
node's label source it configures."""

import dataclasses
import importlib
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from qtopt_collector.episode_driver import EpisodeDriverConfig
from qtopt_collector.graph import (
    CellGraphConfig,
    Endpoint,
    Interfaces,
    RealCellGraphConfig,
    cell_namespace,
    declared_names,
    missing_providers,
    real_cell_graph,
    sim_cell_graph,
)
from qtopt_collector.graph_figure import OUTSIDE, draw_graph, graph_edges, node_key
from qtopt_collector.ros.runner import GraphRunner, node_command, run_episodes
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_collector.success_node import SuccessNodeConfig, label_by_truth
from qtopt_policy.ros_params import declare_config

SCRIPTS = {ep.name: ep for ep in entry_points(group="console_scripts")}


class _ParameterNode:
    """Stands in for a node: ``declare_config`` reads a NodeSpec's parameters as the started
    node would, and ``declared`` collects the names it declares."""

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.parameters, self.declared = parameters, set()

    def declare_parameter(self, name: str, default: Any, *_: Any) -> SimpleNamespace:
        self.declared.add(name)
        return SimpleNamespace(value=self.parameters.get(name, default))


@pytest.mark.parametrize("specs", [
    sim_cell_graph(CellGraphConfig(cells=2)),
    sim_cell_graph(CellGraphConfig(cells=1, policy="noisy", model_path="/m.pt",
                                   driver=EpisodeDriverConfig())),
    real_cell_graph(RealCellGraphConfig(model_path="/m.pt", driver=EpisodeDriverConfig())),
], ids=["sim-scripted", "sim-noisy-driven", "real-greedy-driven"])
def test_every_node_resolves_to_an_installed_executable_and_module(specs):
    for spec in specs:
        assert spec.executable in SCRIPTS, spec.executable  # what `ros2 run` / launch uses
        assert SCRIPTS[spec.executable].module == spec.module
        assert callable(getattr(importlib.import_module(spec.module),
                                SCRIPTS[spec.executable].attr.split(".")[0]))


def test_sim_graph_has_one_of_each_node_per_cell_and_a_shared_policy_node():
    specs = sim_cell_graph(CellGraphConfig(cells=2, policy="greedy", model_path="/m.pt"))
    per_cell = {ns: sorted(s.executable for s in specs if s.namespace == ns)
                for ns in ("cell0", "cell1")}
    assert per_cell["cell0"] == per_cell["cell1"] == [
        "episode_runner_node", "recorder_node", "sim_cell_node", "success_node"]
    assert [s.executable for s in specs if not s.namespace] == ["policy_node"]
    runner = next(s for s in specs if s.executable == "episode_runner_node")
    assert runner.parameters["policy"] == "greedy"
    # every bag records the camera and the label source it was collected with
    recorder = next(s for s in specs if s.executable == "recorder_node")
    assert recorder.parameters["camera"] == SimCellConfig().camera().to_json()
    assert recorder.parameters["label_source"] == "detector"


def test_runner_command_line_carries_namespace_name_and_typed_parameters():
    spec = next(s for s in sim_cell_graph(CellGraphConfig()) if s.executable == "success_node")
    cmd = node_command(spec)
    assert cmd[1:3] == ["-m", "qtopt_collector.success_node"]
    assert "__ns:=/cell0" in cmd and "__node:=success_detector" in cmd
    assert "drop_test.lift_height:=0.3" in cmd and "ground_truth_service:=sim/held_object" in cmd
    sim = next(s for s in sim_cell_graph(CellGraphConfig()) if s.executable == "sim_cell_node")
    sim_cmd = node_command(sim)
    assert "workspace.half_extent:=[0.15, 0.15]" in sim_cmd
    assert "bounds.max_translation_z:=0.08" in sim_cmd


def test_a_driven_graph_has_one_driver_for_its_cells_and_the_runner_refuses_it(tmp_path):
    driver = EpisodeDriverConfig(episodes=7, seed=3)
    specs = sim_cell_graph(CellGraphConfig(cells=2, driver=driver))
    (spec,) = [s for s in specs if s.executable == "episode_driver_node"]
    assert (spec.namespace, spec.name, spec.respawn, spec.required) == (
        "", "episode_driver", False, True)  # a respawned driver would count again
    assert spec.parameters["actions"] == ["/cell0/run_episode", "/cell1/run_episode"]
    assert (spec.parameters["episodes"], spec.parameters["seed"]) == (7, 3)
    assert missing_providers(specs) == []  # both cells serve the driver's actions
    assert all(s.respawn and not s.required for s in specs if s is not spec)
    node = _ParameterNode(spec.parameters)
    assert declare_config(node, EpisodeDriverConfig).actions == tuple(spec.parameters["actions"])
    assert set(spec.parameters) <= node.declared
    real = real_cell_graph(RealCellGraphConfig(cell_id="cell4", policy="scripted",
                                               driver=driver))
    assert [(s.namespace, s.parameters["actions"]) for s in real
            if s.executable == "episode_driver_node"] == [("cell4", ["/cell4/run_episode"])]
    # the runner sends its own goals: a graph with a driver would collect twice
    assert not any(s.executable == "episode_driver_node"
                   for s in sim_cell_graph(CellGraphConfig(cells=2)))
    with pytest.raises(ValueError, match="episode driver"):
        run_episodes(GraphRunner(specs, {}, tmp_path), ["cell0", "cell1"], 1)


def test_learned_policies_need_a_model_and_bad_values_are_named():
    with pytest.raises(ValueError, match="'greedy' needs a model_path"):
        CellGraphConfig(policy="greedy")
    with pytest.raises(ValueError, match="'best'"):
        CellGraphConfig(policy="best")


def test_the_launch_helper_keeps_dds_local_by_default():
    # the launch files themselves are executed in test/test_launch_files.py
    helper = importlib.import_module("qtopt_collector.launch_description")
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE" in Path(helper.__file__).read_text()
    assert helper.COMMON_ARGUMENTS["discovery_range"].default == "LOCALHOST"


@pytest.mark.parametrize("label", ["detector", "truth"])
def test_sim_graph_gives_the_cells_label_source_to_the_success_node(label):
    specs = sim_cell_graph(CellGraphConfig(sim=SimCellConfig(respawn_every=10, label=label)))
    sim = next(s for s in specs if s.executable == "sim_cell_node")
    assert (sim.parameters["respawn_every"], sim.parameters["label"]) == (10, label)
    success = next(s for s in specs if s.executable == "success_node")
    node = _ParameterNode(success.parameters)
    assert declare_config(node, SuccessNodeConfig).label == label  # a valid node config
    assert set(success.parameters) <= node.declared  # the node reads every one


class _LoggingRig:
    """A drop test rig (success_detection.DropTestRig) that logs what it is asked to do."""

    def __init__(self, held: bool | None) -> None:
        self.held, self.log = held, []

    def lift(self) -> None:
        self.log.append("lift")

    def held_object_ground_truth(self) -> bool | None:
        self.log.append("truth")
        return self.held

    def move_out_of_view(self) -> None:
        self.log.append("out of view")

    def capture(self) -> np.ndarray:
        self.log.append("capture")
        return np.zeros((4, 4, 3), np.uint8)

    def return_over_bin(self) -> None:
        self.log.append("over bin")

    def open_gripper(self) -> None:
        self.log.append("open")


@pytest.mark.parametrize("held", [True, False])
def test_truth_label_lifts_asks_the_simulator_and_drops_the_object_back(held):
    rig = _LoggingRig(held)
    assert label_by_truth(rig) is held
    assert rig.log == ["lift", "truth", "open"]  # no drop test: no images, no out-of-view moves


def test_truth_label_without_a_ground_truth_service_fails_clearly():
    with pytest.raises(ValueError, match="'truth' needs a ground_truth_service"):
        SuccessNodeConfig(label="truth")
    with pytest.raises(ValueError, match="'foo'"):
        SuccessNodeConfig(ground_truth_service="sim/held_object", label="foo")
    with pytest.raises(RuntimeError, match="no ground truth"):
        label_by_truth(_LoggingRig(None))


SIM_GRAPHS = {"sim-scripted-2": CellGraphConfig(cells=2),
              "sim-noisy-1": CellGraphConfig(cells=1, policy="noisy", model_path="/m.pt")}


@pytest.mark.parametrize("config", SIM_GRAPHS.values(), ids=SIM_GRAPHS.keys())
def test_every_sim_node_declares_its_interfaces(config):
    for spec in sim_cell_graph(config):
        assert any(spec.interfaces.items()), spec.executable
        for _, endpoint in spec.interfaces.items():
            assert endpoint.type.count("/") == 2 and endpoint.name, endpoint


@pytest.mark.parametrize("config", SIM_GRAPHS.values(), ids=SIM_GRAPHS.keys())
def test_in_every_cell_what_a_node_subscribes_to_or_calls_is_provided(config):
    specs = sim_cell_graph(config)
    for i in range(config.cells):
        assert missing_providers(specs, cell_namespace(i)) == []
    # A served policy: the runner calls the fleet's policy node; a local one: nobody serves it.
    names = declared_names(specs)
    assert (("service", "/select_action") in names) == (config.policy == "noisy")
    assert names[("action", "/cell0/run_episode")] == {"qtopt_msgs/action/RunEpisode"}
    assert names[("topic", "/cell0/episodes")] == {"qtopt_msgs/msg/Episode"}


def test_the_consistency_check_names_what_is_missing_or_mistyped():
    specs = sim_cell_graph(CellGraphConfig())
    without_recorder = [s for s in specs if s.executable != "recorder_node"]
    assert missing_providers(without_recorder, "cell0") == [
        "episode_runner_node in /cell0: topic /cell0/recorded [std_msgs/msg/String]: "
        "no provider"]
    mistyped = Interfaces(clients=(Endpoint("success/detect", "std_srvs/srv/Trigger"),))
    probe = dataclasses.replace(specs[0], name="probe", interfaces=mistyped)
    (problem,) = missing_providers([*specs, probe], "cell0")
    assert "service /cell0/success/detect [std_srvs/srv/Trigger]: provided as " \
           "['qtopt_msgs/srv/DetectGraspSuccess']" in problem


def test_real_cell_nodes_declare_the_same_cell_interfaces():
    real = declared_names(real_cell_graph(RealCellGraphConfig(model_path="/m.pt")))
    sim = declared_names(sim_cell_graph(CellGraphConfig(policy="greedy", model_path="/m.pt")))
    # The simulator's ground truth is the only difference, and the driver's image topic.
    assert set(sim) - set(real) == {("service", "/cell0/sim/held_object")}
    assert set(real) - set(sim) == {("topic", "/camera/color/image_raw")}


def test_the_figure_has_one_box_per_node_and_one_legend_line_per_edge_kind():
    specs = sim_cell_graph(SIM_GRAPHS["sim-noisy-1"])
    fig = draw_graph(specs)
    (ax,) = fig.axes
    boxes = sorted(p.get_gid() for p in ax.patches if (p.get_gid() or "").startswith("node:"))
    assert boxes == sorted(f"node:{node_key(s)}" for s in specs)
    assert [t.get_text().split(":")[0] for t in ax.get_legend().get_texts()] == [
        "topic", "service", "action"]
    edges = {(e.source, e.target, e.kind): e.labels for e in graph_edges(specs)}
    assert edges[("/cell0/episode_runner", "/cell0/recorder", "topic")] == (
        "episodes [Episode]",)
    assert edges[(OUTSIDE, "/cell0/episode_runner", "action")] == ("run_episode [RunEpisode]",)
    assert edges[("/cell0/episode_runner", "/policy_node", "service")] == (
        "/select_action [SelectAction]",)
