"""The simulated QT-Opt training graph: ``ros2 launch qtopt_learner sim.launch.py``.

Simulated cells run pi_noisy (App. B) through the shared policy node, which serves
``model_path`` and reloads every model the learner node announces; the learner node replays
``offline_paths`` and fine-tunes on the cells' live episodes (App. F.3), resuming from
``run_dir``'s checkpoints. The episode driver sends the cells their goals, ``episodes:=N`` of
them (0, the default: until Ctrl-C); the learner trains on after the last one until ``steps``
or Ctrl-C. ``seed`` is the run's, as ``qtopt sim --seed``: the learner's and the episodes'.
Example, after ``qtopt train`` wrote runs/off:

    ros2 launch qtopt_learner sim.launch.py cells:=2 model_path:=runs/off/model.pt \\
        run_dir:=runs/off offline_paths:=data steps:=30000

The node list comes from ``qtopt_learner.app.training_graph``, the same description ``qtopt sim``
and the main job's collect-while-train loop (``qtopt run``) start with the project's runner on
machines without ``ros2 launch`` (which send the goals themselves: no driver there).
``params_file`` values win over the graph's (e.g. ``share/qtopt_collector/config/sim.yaml``),
except the camera: the cells render the one the model was trained with, and a file that sets
another is refused. DDS stays on this machine unless ``discovery_range:=SUBNET``.
"""

from qtopt_collector.graph import CellGraphConfig, NodeSpec
from qtopt_collector.launch_description import (
    DRIVER_ARGUMENTS,
    Argument,
    driver_config,
    graph_launch_description,
    integer_argument,
    model_info,
    params_file,
    sim_config_with_file,
)
from qtopt_learner.app.training_graph import in_models_mdp, sim_training_graph
from qtopt_learner.distributed.fine_tuning import FineTuningConfig
from qtopt_learner.learner_config import LearnerConfig, learner_preset
from qtopt_policy.names import PRESET_NAMES, SERVED_POLICIES

ARGUMENTS = {
    "cells": Argument("2", "number of simulated cells"),
    "policy": Argument("noisy", "learned policy the cells run: noisy (pi_noisy) or greedy",
                       SERVED_POLICIES),
    "model_path": Argument("", "TorchScript Q-network to start from (an off-policy export)"),
    "out_dir": Argument("data/online_cells", "folder for the cells' rosbag2 bags"),
    "run_dir": Argument("runs/learner", "learner run folder; its checkpoints are resumed"),
    "offline_paths": Argument("data", "comma-separated bags or folders for log replay"),
    "steps": Argument("30000", "gradient steps to reach"),
    "preset": Argument("sim", "Q-network and trainer preset", PRESET_NAMES),
    **DRIVER_ARGUMENTS,
}


def _specs(arg: dict[str, str]) -> list[NodeSpec]:
    from qtopt_collector.sim_cell import SimCellConfig

    cell_count = integer_argument(arg, "cells", CellGraphConfig)
    info = model_info(arg)
    # the camera the model was trained with
    sim = sim_config_with_file(SimCellConfig(), info, params_file(arg), cell_count)
    learner = learner_preset(
        arg["preset"], run_dir=arg["run_dir"], steps=integer_argument(arg, "steps", LearnerConfig),
        seed=integer_argument(arg, "seed", LearnerConfig),
        offline_paths=tuple(p for p in arg["offline_paths"].split(",") if p),
        fine_tuning=FineTuningConfig(enabled=True), camera=sim.camera(),
        label_source=sim.label)
    cells = CellGraphConfig(cells=cell_count, policy=arg["policy"],
                            model_path=arg["model_path"], out_dir=arg["out_dir"], sim=sim,
                            driver=driver_config(arg))
    return sim_training_graph(*in_models_mdp(cells, learner, info))


def generate_launch_description():
    return graph_launch_description(ARGUMENTS, _specs)
