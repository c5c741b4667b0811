"""The simulated QT-Opt training graph: ``ros2 launch launch/sim.launch.py``.

Simulated cells run pi_noisy (App. B) through the shared policy node, which serves
``model_path`` and reloads every model the learner node announces; the learner node replays
``offline_paths`` and fine-tunes on the cells' live episodes (App. F.3), resuming from
``run_dir``'s checkpoints. Example, after ``qtopt train`` wrote runs/off:

    ros2 launch launch/sim.launch.py cells:=2 model_path:=runs/off/model.pt \\
        run_dir:=runs/off offline_paths:=data steps:=30000

The node list comes from ``qtopt_learner.app.training_graph``, the same description ``qtopt sim``
and the main job's collect-while-train loop (``qtopt run``) start with the project's runner on
machines without ``ros2 launch``. DDS stays on this machine unless ``discovery_range:=SUBNET``.
"""

from qtopt_collector.graph import CellGraphConfig, NodeSpec
from qtopt_collector.launch_description import graph_launch_description
from qtopt_learner.app.training_graph import sim_for_model, sim_training_graph
from qtopt_learner.distributed.fine_tuning import FineTuningConfig
from qtopt_learner.learner_config import learner_preset

ARGUMENTS = {
    "cells": ("2", "number of simulated cells"),
    "policy": ("noisy", "learned policy the cells run: noisy (pi_noisy) or greedy"),
    "model_path": ("", "TorchScript Q-network to start from (an off-policy export)"),
    "out_dir": ("data/online_cells", "folder for the cells' rosbag2 bags"),
    "run_dir": ("runs/learner", "learner run folder; its checkpoints are resumed"),
    "offline_paths": ("data", "comma-separated bags or folders for log replay"),
    "steps": ("30000", "gradient steps to reach"),
    "preset": ("sim", "Q-network and trainer preset: sim or paper"),
}


def _specs(arg: dict[str, str]) -> list[NodeSpec]:
    sim = sim_for_model(arg["model_path"])  # the camera the model was trained with
    learner = learner_preset(
        arg["preset"], run_dir=arg["run_dir"], steps=int(arg["steps"]),
        offline_paths=tuple(p for p in arg["offline_paths"].split(",") if p),
        fine_tuning=FineTuningConfig(enabled=True), camera=sim.camera(),
        label_source=sim.label)
    cells = CellGraphConfig(cells=int(arg["cells"]), policy=arg["policy"],
                            model_path=arg["model_path"], out_dir=arg["out_dir"], sim=sim)
    return sim_training_graph(cells, learner)


def generate_launch_description():
    return graph_launch_description(ARGUMENTS, _specs)
