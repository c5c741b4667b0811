"""A stand-in for the KUKA driver stack, for tests (we cannot have the real arm here).

It consumes what the real controllers consume and answers as they do:
- ``JointTrajectory`` on the trajectory topic: joints move linearly to the last point over its
  ``time_from_start``; ``sensor_msgs/JointState`` is published at 100 Hz (ros2_control's
  joint_state_broadcaster);
- ``TwistStamped`` on the servo topic: the fingertip pose integrates the commanded twist while
  commands keep coming (MoveIt Servo stops after a short timeout); ``PoseStamped`` at 100 Hz.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from qtopt_collector.kinematics import HOME, JOINT_NAMES, KukaKinematics
from qtopt_collector.ros.hardware_backends import HardwareArmConfig
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros_params import declare_config

RATE_HZ = 100.0
SERVO_COMMAND_TIMEOUT_S = 0.1


class FakeKukaController(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("fake_kuka_controller", **kwargs)
        self.config = declare_config(self, HardwareArmConfig)
        self.q = np.array(HOME)
        self.segment: tuple[np.ndarray, np.ndarray, float, float] | None = None
        kin = KukaKinematics(self.config.geometry)
        x, y, h, yaw = kin.fingertip(self.q)
        self.pose = np.array([x, y, h, yaw])
        self.twist = np.zeros(4)
        self.twist_time = 0.0
        self.last_tick = time.monotonic()
        self.joint_states = self.create_publisher(JointState, self.config.joint_state_topic, 10)
        self.poses = self.create_publisher(PoseStamped, self.config.pose_topic, 10)
        self.create_subscription(JointTrajectory, self.config.trajectory_topic,
                                 self._on_trajectory, 10)
        self.create_subscription(TwistStamped, self.config.twist_topic, self._on_twist, 10)
        self.create_timer(1.0 / RATE_HZ, self._tick)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        index = {n: i for i, n in enumerate(msg.joint_names)}
        last = msg.points[-1]
        target = np.array([last.positions[index[n]] for n in JOINT_NAMES])
        duration = last.time_from_start.sec + last.time_from_start.nanosec * 1e-9
        self.segment = (self.q.copy(), target, time.monotonic(), max(duration, 1e-3))

    def _on_twist(self, msg: TwistStamped) -> None:
        t = msg.twist
        self.twist = np.array([t.linear.x, t.linear.y, t.linear.z, t.angular.z])
        self.twist_time = time.monotonic()

    def _tick(self) -> None:
        now = time.monotonic()
        if self.segment is not None:
            start, target, t0, duration = self.segment
            alpha = min(1.0, (now - t0) / duration)
            self.q = start + alpha * (target - start)
        # Real time (timers run late under load), but only while the last command is fresh:
        # MoveIt Servo halts SERVO_COMMAND_TIMEOUT_S after the last twist.
        moving_until = min(now, self.twist_time + SERVO_COMMAND_TIMEOUT_S)
        self.pose = self.pose + self.twist * max(0.0, moving_until - self.last_tick)
        self.last_tick = now
        js = JointState(name=list(JOINT_NAMES), position=[float(v) for v in self.q])
        js.header.stamp = self.get_clock().now().to_msg()
        self.joint_states.publish(js)
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = js.header.stamp, self.config.base_frame
        pose.pose.position.x, pose.pose.position.y = float(self.pose[0]), float(self.pose[1])
        pose.pose.position.z = float(self.pose[2] + self.config.geometry.floor_z)
        pose.pose.orientation.z = math.sin(self.pose[3] / 2)
        pose.pose.orientation.w = math.cos(self.pose[3] / 2)
        self.poses.publish(pose)


def main(args: list[str] | None = None) -> int:
    return spin_nodes(lambda: [FakeKukaController()], args=args)


if __name__ == "__main__":
    sys.exit(main())
