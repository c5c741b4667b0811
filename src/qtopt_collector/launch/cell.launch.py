"""Launch grasping cells: ``ros2 launch qtopt_collector cell.launch.py``.

Simulated (default): ``cells:=2 policy:=scripted out_dir:=data``.
Real KUKA cell: ``sim:=false arm_backend:=trajectory image_topic:=/camera/color/image_raw
policy:=greedy model_path:=MODEL.pt``, next to the robot's ros2_control (or MoveIt Servo)
and camera driver launch.

The node list comes from ``qtopt_collector.graph``, the same description the project's runner
(``qtopt cell``) starts, so both start the same graph. DDS stays on this machine unless
``discovery_range:=SUBNET`` is given (needed when the robot drivers run on another computer).
"""

from qtopt_collector.graph import (
    CellGraphConfig,
    NodeSpec,
    RealCellGraphConfig,
    real_cell_graph,
    sim_cell_graph,
)
from qtopt_collector.launch_description import graph_launch_description

ARGUMENTS = {
    "sim": ("true", "simulated PyBullet cells (true) or one real KUKA cell (false)"),
    "cells": ("1", "number of simulated cells"),
    "policy": ("scripted", "scripted, scripted_noisy, greedy or noisy"),
    "model_path": ("", "TorchScript Q-network for greedy/noisy"),
    "out_dir": ("data", "folder for the rosbag2 bags"),
    "objects": ("train", "simulated objects: train or test (held out)"),
    "arm_backend": ("trajectory", "real cell: trajectory (ros2_control) or servo (MoveIt Servo)"),
    "image_topic": ("/camera/color/image_raw", "real cell: the camera driver's image topic"),
    "cell_id": ("cell0", "real cell: its namespace and id"),
}


def _specs(arg: dict[str, str]) -> list[NodeSpec]:
    if arg["sim"].lower() == "true":
        from qtopt_collector.sim_cell import SimCellConfig

        return sim_cell_graph(CellGraphConfig(
            cells=int(arg["cells"]), policy=arg["policy"], out_dir=arg["out_dir"],
            model_path=arg["model_path"], sim=SimCellConfig(object_split=arg["objects"])))
    return real_cell_graph(RealCellGraphConfig(
        cell_id=arg["cell_id"], arm_backend=arg["arm_backend"],
        image_topic=arg["image_topic"], policy=arg["policy"],
        model_path=arg["model_path"], out_dir=arg["out_dir"]))


def generate_launch_description():
    return graph_launch_description(ARGUMENTS, _specs)
