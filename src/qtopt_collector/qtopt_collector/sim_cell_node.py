"""sim_cell_node: one simulated cell in one process (a component container in spirit).

The camera, arm and gripper nodes serve the camera, arm and gripper of one SimCell (one PyBullet
world), next to a ``sim`` node holding the SimCellConfig parameters and the simulator-only
``sim/held_object`` ground-truth service. A single-threaded executor serializes access to the
physics. On a real cell the same three node classes run with hardware backends instead.
"""

from __future__ import annotations

import sys

from rclpy.node import Node
from std_srvs.srv import Trigger

from qtopt_collector.arm_node import ArmNode
from qtopt_collector.camera_node import CameraNode
from qtopt_collector.gripper_node import GripperNode
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros_names import HELD_OBJECT_SERVICE
from qtopt_policy.ros_params import declare_config


class SimNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("sim", **kwargs)
        self.config = declare_config(self, SimCellConfig)
        self.cell = SimCell(self.config)
        self.create_service(Trigger, HELD_OBJECT_SERVICE, self._on_held_object)

    def _on_held_object(self, request, response):
        response.success = self.cell.held_object_ground_truth()
        response.message = "object held" if response.success else "nothing held"
        return response


def main(args: list[str] | None = None) -> int:
    def make_nodes() -> list[Node]:
        sim = SimNode()
        cell = sim.cell
        return [sim, CameraNode(lambda _: cell.camera),
                ArmNode(lambda _: cell.arm, sim.config.bounds),
                GripperNode(lambda _: cell.gripper)]

    # One thread: the PyBullet world is not thread-safe and serial callbacks keep it
    # deterministic.
    return spin_nodes(make_nodes, args=args)


if __name__ == "__main__":
    sys.exit(main())
