"""The installed launch files, executed: ``cell.launch.py`` (qtopt_collector) and
``sim.launch.py`` (qtopt_learner) start the Node actions the graph description
(``qtopt_collector.graph``, ``qtopt_learner.app.training_graph``) lists, with its parameters,
the ``params_file`` after them, ``respawn`` where the description allows it, and refuse values
outside an argument's choices.

``launch`` and ``launch_ros`` have no wheels here, so the launch files run against a stand-in
(test/launch_stand_in.py): real signatures and argument checks, no processes. Its docstring
lists what it does not check. What the nodes make of the parameter files is not the
stand-in's: those tests hand each node's ``--ros-args`` to a real rclpy node and let rcl
resolve them, so the precedence of the params file and the example files' names are checked
against ROS itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from qtopt_collector.bag_recorder import RecorderConfig
from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.episode_driver import EpisodeDriverConfig
from qtopt_collector.episode_runner_node import EpisodeRunnerConfig
from qtopt_collector.graph import (
    CellGraphConfig,
    NodeSpec,
    RealCellGraphConfig,
    real_cell_graph,
    sim_cell_graph,
)
from qtopt_collector.launch_description import file_sections, node_parameters
from qtopt_collector.ros.hardware_backends import (
    HardwareArmConfig,
    HardwareGripperConfig,
    TopicCameraConfig,
)
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_collector.success_node import SuccessNodeConfig
from qtopt_policy.ros_env import fastdds_profile_path, package_share_directory
from qtopt_policy.ros_params import config_to_parameters, declare_config

from .launch_stand_in import Launched, StandInNode, install, run_launch_file

CELL_LAUNCH = package_share_directory("qtopt_collector") / "launch" / "cell.launch.py"
SIM_LAUNCH = package_share_directory("qtopt_learner") / "launch" / "sim.launch.py"
CONFIG = package_share_directory("qtopt_collector") / "config"
# The config dataclass each node name declares (its parameters mirror it one-to-one).
NODE_CONFIGS: dict[str, type] = {
    "sim": SimCellConfig, "arm": HardwareArmConfig, "gripper": HardwareGripperConfig,
    "camera": TopicCameraConfig, "success_detector": SuccessNodeConfig,
    "episode_runner": EpisodeRunnerConfig, "recorder": RecorderConfig,
    "episode_driver": EpisodeDriverConfig}


# A model file the launch files read (its camera); a served policy's model_path in the cases.
MODEL = "MODEL"
# A camera other than the sim cell's default, for a model trained with it.
OTHER_CAMERA = dataclasses.replace(SimCellConfig().camera(), width=96, height=80, fov_deg=55.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """Models trained with the default camera and with another one."""
    root = tmp_path_factory.mktemp("models")
    return {"default": _export_model(root / "default.pt", SimCellConfig().camera()),
            "other": _export_model(root / "other.pt", OTHER_CAMERA, termination="scripted")}


@pytest.fixture
def launch(monkeypatch, tmp_path):
    install(monkeypatch)

    def run(path: Path, **arguments: Any) -> Launched:
        return run_launch_file(path, {k: str(v) for k, v in arguments.items()}, tmp_path)

    return run


def _assert_starts(launched: Launched, specs: list[NodeSpec], params_file: Path | None = None,
                   respawn: bool = True) -> None:
    """The launch's Node actions are ``specs``, in order, each with its parameters (and the
    params file after them), respawned where the description allows, and the driver's exit
    ending the launch where the description says so."""
    assert [(n.package, n.executable, n.namespace, n.name) for n in launched.nodes] == [
        (s.package, s.executable, s.namespace or None, s.name or None) for s in specs]
    for node, spec in zip(launched.nodes, specs, strict=True):
        assert node.parameters == [spec.parameters] + ([str(params_file)] if params_file else [])
        assert node.respawn == (respawn and spec.respawn), spec.executable
        assert (node.process.get("on_exit") is not None) == spec.required, spec.executable
    assert launched.environment["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert launched.environment["FASTDDS_DEFAULT_PROFILES_FILE"] == str(fastdds_profile_path())


def test_the_launch_files_and_example_configs_are_installed_in_package_shares():
    for path in (CELL_LAUNCH, SIM_LAUNCH, CONFIG / "sim.yaml", CONFIG / "real_cell.yaml"):
        assert path.is_file(), path
    # the workspace folder keeps a pointer, not a second copy
    workspace_launch = Path(__file__).resolve().parents[1] / "launch"
    assert not list(workspace_launch.glob("*.launch.py"))
    readme = (workspace_launch / "README.md").read_text()
    assert "ros2 launch qtopt_learner sim.launch.py" in readme


CELL_CASES = {
    "defaults": ({}, CellGraphConfig(driver=EpisodeDriverConfig())),
    "two-noisy-cells-10-episodes": (
        {"cells": 2, "policy": "noisy", "model_path": MODEL, "objects": "test",
         "episodes": 10, "seed": 500, "out_dir": "/bags"},
        CellGraphConfig(cells=2, policy="noisy", model_path=MODEL, out_dir="/bags",
                        sim=SimCellConfig(object_split="test"),
                        driver=EpisodeDriverConfig(episodes=10, seed=500))),
    "no-driver-no-respawn": ({"driver": "false", "respawn": "false", "cells": 2},
                             CellGraphConfig(cells=2)),
}


@pytest.mark.parametrize("arguments, config", CELL_CASES.values(), ids=CELL_CASES.keys())
def test_cell_launch_starts_the_sim_graph(launch, models, arguments, config):
    if config.model_path == MODEL:  # a model with the default camera: the cells' own
        arguments = {**arguments, "model_path": models["default"]}
        # it records no rule: it predates the record, when the learned stop was the default
        config = dataclasses.replace(config, model_path=models["default"],
                                     episode=EpisodeConfig.ending_by("learned"))
    launched = launch(CELL_LAUNCH, **arguments)
    _assert_starts(launched, sim_cell_graph(config), respawn=arguments.get("respawn") != "false")
    drivers = [n for n in launched.nodes if n.executable == "episode_driver_node"]
    assert len(drivers) == (config.driver is not None)  # one per fleet, or the user sends goals


def test_cell_launch_starts_a_real_cell_with_the_params_file(launch, models):
    params, model = CONFIG / "real_cell.yaml", models["other"]
    launched = launch(CELL_LAUNCH, sim="false", arm_backend="servo", cell_id="cell3",
                      policy="greedy", model_path=model, episodes=5, params_file=params)
    specs = real_cell_graph(RealCellGraphConfig(
        cell_id="cell3", arm_backend="servo", policy="greedy", model_path=model,
        episode=EpisodeConfig.ending_by("scripted"),  # the rule the model records
        driver=EpisodeDriverConfig(episodes=5)))
    _assert_starts(launched, specs, params_file=params)
    driver = launched.nodes[-1]
    assert (driver.namespace, driver.parameters[0]["actions"]) == (
        "cell3", ["/cell3/run_episode"])


def test_sim_launch_starts_the_training_graph_whose_driver_does_not_end_it(launch, models):
    """The cells render the camera the model was trained with (not the default one), which
    the example params file leaves alone."""
    from qtopt_learner.app.training_graph import sim_training_graph
    from qtopt_learner.distributed.fine_tuning import FineTuningConfig
    from qtopt_learner.learner_config import learner_preset

    model = models["other"]
    launched = launch(SIM_LAUNCH, cells=2, model_path=model, run_dir="/r", steps=500,
                      offline_paths="/a,/b", episodes=20, seed=3,
                      params_file=CONFIG / "sim.yaml")
    sim = SimCellConfig().with_camera(OTHER_CAMERA)
    # fine-tuning in the model's MDP: Algorithm 2, as it records, so the targets score no stop
    learner = learner_preset("sim", run_dir="/r", steps=500, seed=3, offline_paths=("/a", "/b"),
                             fine_tuning=FineTuningConfig(enabled=True), camera=OTHER_CAMERA,
                             label_source=sim.label, termination="scripted")
    learner = dataclasses.replace(learner, updater=dataclasses.replace(
        learner.updater, cem=dataclasses.replace(learner.updater.cem, learned_termination=False)))
    specs = sim_training_graph(CellGraphConfig(
        cells=2, policy="noisy", model_path=model, out_dir="data/online_cells", sim=sim,
        episode=EpisodeConfig.ending_by("scripted"),
        driver=EpisodeDriverConfig(episodes=20, seed=3)), learner)
    _assert_starts(launched, specs, params_file=CONFIG / "sim.yaml")
    driver = next(n for n in launched.nodes if n.executable == "episode_driver_node")
    learner_node = next(n for n in launched.nodes if n.executable == "learner_node")
    assert driver.process.get("on_exit") is None  # the learner trains on after the episodes
    assert learner_node.respawn and not driver.respawn


@pytest.mark.parametrize("path, argument, value", [
    (CELL_LAUNCH, "policy", "best"), (CELL_LAUNCH, "objects", "validation"),
    (CELL_LAUNCH, "arm_backend", "moveit"), (CELL_LAUNCH, "sim", "yes"),
    (CELL_LAUNCH, "respawn", "always"), (CELL_LAUNCH, "discovery_range", "WAN"),
    (CELL_LAUNCH, "driver", "on"), (SIM_LAUNCH, "preset", "huge"),
    (SIM_LAUNCH, "policy", "scripted"),
])
def test_a_value_outside_an_arguments_choices_is_refused_before_any_node(
        launch, path, argument, value):
    with pytest.raises(RuntimeError, match=f'Argument "{argument}" provided value "{value}" is '
                                           "not valid"):
        launch(path, **{argument: value})


@pytest.mark.parametrize("path, arguments, message", [
    (CELL_LAUNCH, {"cells": "two"}, "cells 'two': expected an integer >= 1"),
    (CELL_LAUNCH, {"cells": "0"}, "cells '0': expected an integer >= 1"),
    (CELL_LAUNCH, {"episodes": "-1"}, "episodes '-1': expected an integer >= 0"),
    (CELL_LAUNCH, {"seed": "1.5"}, "seed '1.5': expected an integer >= 0"),
    (SIM_LAUNCH, {"steps": "30k"}, "steps '30k': expected an integer >= 0"),
])
def test_a_bad_integer_argument_is_named(launch, path, arguments, message):
    with pytest.raises(ValueError, match=message):
        launch(path, **arguments)


def test_a_params_file_that_changes_a_models_camera_is_refused(launch, models, tmp_path):
    """The cells of a model-driven graph render the camera the model was trained with; a
    parameter file that sets another would show the model a view it never learned from."""
    camera = _with_sections(tmp_path, CONFIG / "sim.yaml", {"/**/sim": {"camera_width": 72}})
    for path, arguments in ((SIM_LAUNCH, {}), (CELL_LAUNCH, {"policy": "greedy"})):
        with pytest.raises(ValueError, match=rf"params_file {camera}: sets the simulated "
                                             "cells' camera to 72x80 px"):
            launch(path, model_path=models["other"], params_file=camera, **arguments)
    # a file that leaves the camera alone passes (without a model the file may set it: see
    # test_sim_parameters_from_the_file_are_the_ones_every_bag_records)
    launch(CELL_LAUNCH, policy="greedy", model_path=models["other"],
           params_file=CONFIG / "sim.yaml")


def test_a_missing_params_file_fails_instead_of_being_skipped(launch, tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such.yaml"):
        launch(CELL_LAUNCH, params_file=tmp_path / "no_such.yaml")


def test_the_sim_example_holds_the_defaults(launch):
    plain = launch(CELL_LAUNCH, cells=2)
    with_file = launch(CELL_LAUNCH, cells=2, params_file=CONFIG / "sim.yaml")
    assert [n.parameters[0] for n in plain.nodes] == [n.parameters[0] for n in with_file.nodes]
    for node in with_file.nodes:  # and nothing in it differs from the defaults the nodes hold
        config = NODE_CONFIGS.get(node.name or "sim")
        if config is not None:
            defaults = config_to_parameters(config())
            given = node_parameters(_fqn(node, node.name or "sim"),
                                    file_sections(CONFIG / "sim.yaml"))
            assert {k: v for k, v in given.items() if defaults.get(k) != v} == {}, node.name


def _fqn(node: StandInNode, name: str) -> str:
    return f"/{node.namespace}/{name}" if node.namespace else f"/{name}"


def _merge(tree: dict, edits: dict) -> None:
    for key, value in edits.items():
        if isinstance(value, dict):
            _merge(tree.setdefault(key, {}), value)
        else:
            tree[key] = value


def _with_sections(tmp_path: Path, source: Path, sections: dict[str, dict]) -> Path:
    """A copy of ``source`` with ``sections`` merged in: new ones at the end, values of
    existing ones changed in place."""
    tree = yaml.safe_load(source.read_text())
    _merge(tree, {key: {"ros__parameters": value} for key, value in sections.items()})
    path = tmp_path / f"edited_{source.name}"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def test_sim_parameters_from_the_file_are_the_ones_every_bag_records(launch, tmp_path):
    params = _with_sections(tmp_path, CONFIG / "sim.yaml", {
        "/*/sim": {"camera_width": 96, "camera_height": 96, "label": "truth"}})
    launched = launch(CELL_LAUNCH, cells=2, params_file=params)
    camera = SimCellConfig(camera_width=96, camera_height=96).camera().to_json()
    for node in launched.nodes:
        if node.executable == "recorder_node":
            assert node.parameters[0]["camera"] == camera
            assert node.parameters[0]["label_source"] == "truth"
        if node.executable == "success_node":
            assert node.parameters[0]["label"] == "truth"
    uneven = _with_sections(tmp_path, CONFIG / "sim.yaml", {"/cell1/sim": {"camera_width": 64}})
    with pytest.raises(ValueError, match="different sim parameters"):
        launch(CELL_LAUNCH, cells=2, params_file=uneven)


def _resolved(node: StandInNode, name: str) -> Any:
    """What a real rclpy node started with ``node``'s --ros-args reads as its config (the
    config class of its name; ``name`` for a process that holds several nodes)."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, args=node.ros_arguments_for_rclpy())
    try:
        ros_node = rclpy.create_node(name, namespace=f"/{node.namespace or ''}",
                                     context=context)
        try:
            return declare_config(ros_node, NODE_CONFIGS[name])
        finally:
            ros_node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.ros
@pytest.mark.parametrize("example, arguments", [
    ("real_cell.yaml", {"sim": "false", "arm_backend": "servo", "image_topic": "/cam/image"}),
    ("sim.yaml", {"cells": 1, "policy": "scripted"}),
])
def test_the_nodes_read_the_example_files_names_and_the_file_wins(
        ros_domain, launch, tmp_path, example, arguments):
    # The graph sets the episode runner's timeout_s too: the file's value must win; and a
    # measured value that differs from the default.
    params = _with_sections(tmp_path, CONFIG / example, {
        "/**/episode_runner": {"timeout_s": 33.0},
        "/**/arm": {"geometry": {"floor_z": -0.3}}})
    launched = launch(CELL_LAUNCH, params_file=params, **arguments)
    checked = set()
    for node in launched.nodes:
        name = node.name or "sim"  # sim_cell_node's parameters are its sim node's
        if name not in NODE_CONFIGS:
            continue
        read = config_to_parameters(_resolved(node, name))
        # every name the example gives this node is one it declares (a typo would be ignored)
        from_file = node_parameters(_fqn(node, name), file_sections(params))
        assert set(from_file) <= set(read), (name, set(from_file) - set(read))
        # rclpy resolves the graph's dictionary and the file as launch_description expects
        expected = node_parameters(_fqn(node, name), [(node.full_name or "/**",
                                                       node.parameters[0])],
                                   file_sections(params))
        assert {k: read[k] for k in expected} == expected, name
        checked.add(name)
    assert {"episode_runner", "recorder", "episode_driver"} <= checked
    runner = next(n for n in launched.nodes if n.name == "episode_runner")
    assert runner.parameters[0]["timeout_s"] == 60.0  # the graph's, overridden by the file
    assert _resolved(runner, "episode_runner").timeout_s == 33.0
    if example == "real_cell.yaml":
        assert {"arm", "gripper", "camera", "success_detector"} <= checked
        arm = _resolved(next(n for n in launched.nodes if n.name == "arm"), "arm")
        assert arm.backend == "servo"  # the argument, which the example leaves alone
        assert arm.geometry.floor_z == -0.3 and arm.geometry.workspace.start_height == 0.30


def test_a_later_section_for_a_name_the_graph_used_keeps_the_graphs_place(tmp_path):
    """rclpy's order, which node_parameters follows (the test above checks it against rclpy):
    sections apply in the order their names first appear across the files."""
    graph = [("/cell0/arm", {"a": "graph"})]
    user = [("/**/arm", {"a": "wildcard", "b": "wildcard"}), ("/cell0/arm", {"b": "own"})]
    assert node_parameters("/cell0/arm", user) == {"a": "wildcard", "b": "own"}
    assert node_parameters("/cell0/arm", graph, user) == {"a": "wildcard", "b": "wildcard"}
    assert node_parameters("/cell1/arm", graph, user) == {"a": "wildcard", "b": "wildcard"}
    assert node_parameters("/cell0/camera", graph, user) == {}
    nested = tmp_path / "nested.yaml"
    nested.write_text("cell0:\n  arm:\n    ros__parameters:\n      geometry:\n"
                      "        floor_z: -0.2\n/*/arm:\n  ros__parameters:\n    x: 1\n")
    assert node_parameters("/cell0/arm", file_sections(nested)) == {"geometry.floor_z": -0.2,
                                                                     "x": 1}
    assert node_parameters("/a/b/arm", file_sections(nested)) == {}


def _export_model(path: Path, camera, termination: str = "") -> str:
    """A model trained with ``camera``, its episodes ended by ``termination`` ("": not
    recorded, a model from before the record: the learned stop)."""
    import torch

    from qtopt_policy.cem import CEMConfig
    from qtopt_policy.qnetwork import PRESETS, QNetwork
    from qtopt_policy.spec import ActionBounds
    from qtopt_policy.torchscript_model import ModelMetadata, export_model

    torch.manual_seed(0)
    export_model(QNetwork(PRESETS["sim"]).eval(), path,
                 ModelMetadata("sim", PRESETS["sim"], ActionBounds(), CEMConfig(),
                               camera=camera, termination=termination))
    return str(path)
