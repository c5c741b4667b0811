"""The simulated training graph (cells + policy node + learner node) that both
``ros2 launch qtopt_learner sim.launch.py`` (executed in test/test_launch_files.py) and the main
job's collect-while-train loop start."""

import importlib
from importlib.metadata import entry_points

import torch

from qtopt_collector.graph import CellGraphConfig, missing_providers
from qtopt_collector.ros.runner import node_command
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_learner.app.training_graph import sim_training_graph
from qtopt_learner.distributed.fine_tuning import FineTuningConfig
from qtopt_learner.learner_config import learner_preset

SCRIPTS = {ep.name: ep for ep in entry_points(group="console_scripts")}


def _graph():
    learner = learner_preset("sim", run_dir="/r", offline_paths=("/data",), steps=500,
                             fine_tuning=FineTuningConfig(enabled=True))
    cells = CellGraphConfig(cells=2, policy="noisy", model_path="/r/model.pt")
    return sim_training_graph(cells, learner)


def test_training_graph_wires_every_cell_to_the_learner():
    specs = _graph()
    for spec in specs:
        assert SCRIPTS[spec.executable].module == spec.module
        importlib.import_module(spec.module)
    assert sorted(s.executable for s in specs if not s.namespace) == ["learner_node",
                                                                       "policy_node"]
    learner = next(s for s in specs if s.executable == "learner_node")
    assert learner.parameters["episode_topics"] == ["/cell0/episodes", "/cell1/episodes"]
    assert learner.parameters["learner.fine_tuning.enabled"] is True
    assert learner.parameters["learner.offline_paths"] == ["/data"]
    cmd = node_command(learner)
    assert "learner.steps:=500" in cmd and "learner.trainer.lr:=0.01" in cmd
    assert not any(arg.endswith(":=[]") for arg in cmd)  # untyped empty arrays are left out


def test_the_learner_subscribes_to_every_cell_and_provides_the_policy_nodes_updates():
    specs = _graph()
    learner = next(s for s in specs if s.executable == "learner_node")
    assert {e.resolve("") for e in learner.interfaces.subscribes} == {
        "/cell0/episodes", "/cell1/episodes"}
    assert missing_providers(specs) == []  # the policy node's /model_updates included
    without_learner = [s for s in specs if s is not learner]
    assert any("model_updates" in m for m in missing_providers(without_learner))


def test_cells_serving_a_model_render_the_camera_it_was_trained_with(tmp_path):
    from qtopt_policy.cem import CEMConfig
    from qtopt_policy.qnetwork import PRESETS, QNetwork
    from qtopt_policy.spec import ActionBounds
    from qtopt_policy.torchscript_model import ModelMetadata, export_model

    trained = SimCellConfig(camera_target_height=0.1, camera_pitch_deg=-60.0,
                            camera_fov_deg=55.0, camera_distance=0.8).camera()
    torch.manual_seed(0)
    for name, camera in (("with.pt", trained), ("without.pt", None)):
        export_model(QNetwork(PRESETS["sim"]).eval(), tmp_path / name,
                     ModelMetadata("sim", PRESETS["sim"], ActionBounds(), CEMConfig(),
                                   camera=camera))
    cell = SimCellConfig()
    assert cell.for_model(str(tmp_path / "with.pt")).camera() == trained != cell.camera()
    assert cell.for_model(str(tmp_path / "without.pt")) == cell  # older files
    assert cell.for_model("") == cell
