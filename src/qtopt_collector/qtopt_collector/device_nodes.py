"""Entry points of a real cell's device nodes: arm, gripper and camera with hardware backends.

``ros2 run qtopt_collector arm_node --ros-args -p backend:=trajectory`` and friends; parameters
mirror :class:`HardwareArmConfig`, :class:`HardwareGripperConfig` and :class:`TopicCameraConfig`.
Each runs on a multi-threaded executor so a motion waits for feedback inside its service call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from rclpy.node import Node

from qtopt_collector.arm_node import ArmNode
from qtopt_collector.camera_node import CameraNode
from qtopt_collector.gripper_node import GripperNode
from qtopt_collector.ros.hardware_backends import (
    HardwareArmConfig,
    HardwareGripperConfig,
    ServoArm,
    TopicCamera,
    TopicCameraConfig,
    TrajectoryArm,
    TrajectoryGripper,
)
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros_params import declare_config


def _make_arm(node: Node):
    config = declare_config(node, HardwareArmConfig)
    return (TrajectoryArm if config.backend == "trajectory" else ServoArm)(node, config)


def _spin(make: Callable[[], Node]) -> int:
    return spin_nodes(lambda: [make()], threads=3, args=sys.argv)


def arm_main() -> int:
    return _spin(lambda: ArmNode(_make_arm))


def gripper_main() -> int:
    return _spin(lambda: GripperNode(
        lambda n: TrajectoryGripper(n, declare_config(n, HardwareGripperConfig))))


def camera_main() -> int:
    return _spin(lambda: CameraNode(
        lambda n: TopicCamera(n, declare_config(n, TopicCameraConfig))))


if __name__ == "__main__":
    sys.exit({"arm": arm_main, "gripper": gripper_main, "camera": camera_main}[sys.argv[1]]())
