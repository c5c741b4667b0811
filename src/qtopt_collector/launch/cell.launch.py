"""Launch grasping cells that collect on their own: ``ros2 launch qtopt_collector cell.launch.py``.

Simulated (default): ``cells:=2 policy:=scripted out_dir:=data episodes:=100``.
Real KUKA cell, next to the robot's ros2_control (or MoveIt Servo) and camera driver launch:
``sim:=false params_file:=my_cell.yaml arm_backend:=trajectory
image_topic:=/camera/color/image_raw policy:=greedy model_path:=MODEL.pt``, with the cell's
measured geometry in ``my_cell.yaml`` (start from ``share/qtopt_collector/config/real_cell.yaml``;
``sim.yaml`` beside it is the simulated cells' example).

The episode driver sends the cells their RunEpisode goals: ``episodes:=N`` ends the launch
after N recorded episodes, 0 (the default) collects until Ctrl-C; ``driver:=false`` leaves the
goals to you. ``params_file`` values win over the graph's and the arguments'. The node list
comes from ``qtopt_collector.graph``, the same description the project's runner (``qtopt cell``)
starts, so both start the same graph. DDS stays on this machine unless
``discovery_range:=SUBNET`` is given (needed when the robot drivers run on another computer).
"""

from qtopt_collector.graph import (
    CellGraphConfig,
    NodeSpec,
    RealCellGraphConfig,
    real_cell_graph,
    sim_cell_graph,
)
from qtopt_collector.launch_description import (
    BOOLEAN,
    DRIVER_ARGUMENTS,
    Argument,
    driver_config,
    graph_launch_description,
    integer_argument,
    model_info,
    params_file,
    sim_config_with_file,
)
from qtopt_policy.model_file import termination_for
from qtopt_policy.names import ARM_BACKENDS, LOCAL_POLICIES, OBJECT_SPLITS, SERVED_POLICIES

ARGUMENTS = {
    "sim": Argument("true", "simulated PyBullet cells (true) or one real KUKA cell (false)",
                    BOOLEAN),
    "cells": Argument("1", "number of simulated cells"),
    "policy": Argument("scripted", "the cells' policy; greedy and noisy need model_path",
                       LOCAL_POLICIES + SERVED_POLICIES),
    "model_path": Argument("", "TorchScript Q-network for greedy/noisy; episodes end by the "
                           "rule it was trained under, and simulated cells render the camera "
                           "it was trained with"),
    "out_dir": Argument("data", "folder for the rosbag2 bags"),
    "objects": Argument("train", "simulated objects: train or test (held out)",
                        OBJECT_SPLITS),
    "arm_backend": Argument("trajectory", "real cell: trajectory (ros2_control) or servo "
                            "(MoveIt Servo)", ARM_BACKENDS),
    "image_topic": Argument("/camera/color/image_raw", "real cell: the camera driver's image "
                            "topic"),
    "cell_id": Argument("cell0", "real cell: its namespace and id"),
    **DRIVER_ARGUMENTS,
}


def _specs(arg: dict[str, str]) -> list[NodeSpec]:
    from qtopt_collector.episode import EpisodeConfig

    info = model_info(arg)
    # episodes end by the rule model_path was trained under, as it records
    episode = EpisodeConfig.ending_by(termination_for(info))
    if arg["sim"] == "true":
        from qtopt_collector.sim_cell import SimCellConfig

        cells = integer_argument(arg, "cells", CellGraphConfig)
        # the camera model_path was trained with, if one is given
        sim = sim_config_with_file(SimCellConfig(object_split=arg["objects"]), info,
                                   params_file(arg), cells)
        return sim_cell_graph(CellGraphConfig(
            cells=cells, policy=arg["policy"], out_dir=arg["out_dir"],
            model_path=arg["model_path"], sim=sim, episode=episode, driver=driver_config(arg)))
    return real_cell_graph(RealCellGraphConfig(
        cell_id=arg["cell_id"], arm_backend=arg["arm_backend"],
        image_topic=arg["image_topic"], policy=arg["policy"],
        model_path=arg["model_path"], out_dir=arg["out_dir"], episode=episode,
        driver=driver_config(arg)))


def generate_launch_description():
    return graph_launch_description(ARGUMENTS, _specs)

