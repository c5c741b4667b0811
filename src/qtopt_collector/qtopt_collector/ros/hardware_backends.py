"""Backends that drive a real KUKA cell through standard ROS 2 interfaces.

- :class:`TrajectoryArm`: ``trajectory_msgs/JointTrajectory`` to a ros2_control joint
  trajectory controller, feedback from ``sensor_msgs/JointState``; Cartesian steps become joint
  targets through :class:`~qtopt_collector.kinematics.KukaKinematics`.
- :class:`ServoArm`: ``geometry_msgs/TwistStamped`` to MoveIt Servo, closing the loop on a
  ``geometry_msgs/PoseStamped`` of the fingertip frame (e.g. from a Cartesian state broadcaster).
- :class:`TrajectoryGripper`: finger positions as a ``JointTrajectory`` to a gripper controller.
- :class:`TopicCamera`: the newest frame of an image topic published by a camera driver.

Each waits for its motion to finish (or raises TimeoutError), so the episode loop sees the same
blocking semantics as in simulation. Tested against ``fake_kuka_controller_node``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from qtopt_collector.kinematics import HOME, JOINT_NAMES, CellGeometry, KukaKinematics
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.msg_conversions import image_from_msg
from qtopt_policy.names import ARM_BACKENDS


@dataclass(frozen=True)
class HardwareArmConfig:
    """Parameters of the hardware arm node (mirrored one-to-one as ROS parameters)."""

    backend: str = "trajectory"  # "trajectory" (ros2_control) or "servo" (MoveIt Servo)
    joint_state_topic: str = "/joint_states"  # JointState of the arm (trajectory backend)
    # JointTrajectory commands (trajectory backend)
    trajectory_topic: str = "/joint_trajectory_controller/joint_trajectory"
    twist_topic: str = "/servo_node/delta_twist_cmds"  # TwistStamped commands (servo backend)
    pose_topic: str = "/fingertip_pose"  # PoseStamped of the fingertips in the base frame
    base_frame: str = "lbr_iiwa_link_0"  # frame of the twist commands
    move_duration_s: float = bounded(1.0, gt=0)  # s per Cartesian step (trajectory backend)
    joint_tolerance: float = bounded(0.01, gt=0)  # rad: a joint target counts as reached
    position_tolerance: float = bounded(0.004, gt=0)  # m: a pose target counts as reached (servo)
    servo_gain: float = bounded(3.0, gt=0)  # 1/s, proportional gain on the pose error
    servo_max_speed: float = bounded(0.25, gt=0)  # m/s, cap on the commanded speed
    servo_rate_hz: float = bounded(50.0, gt=0)  # twist commands per second (servo backend)
    timeout_s: float = bounded(10.0, gt=0)  # s to wait for joint states, poses and motions
    geometry: CellGeometry = field(default_factory=CellGeometry)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.backend not in ARM_BACKENDS:
            raise ValueError(f"backend {self.backend!r}: expected one of {ARM_BACKENDS}")


def _duration(seconds: float) -> Duration:
    return Duration(sec=int(seconds), nanosec=int((seconds % 1.0) * 1e9))


class _CartesianArm:
    """Cartesian moves shared by both arm backends; subclasses implement ``_go_to``."""

    def __init__(self, config: HardwareArmConfig) -> None:
        self.config = config
        self.kin = KukaKinematics(config.geometry)

    def _go_to(self, x: float, y: float, height: float, yaw: float) -> None:
        raise NotImplementedError

    def tip(self) -> tuple[float, float, float, float]:
        raise NotImplementedError

    def move_relative(self, translation: tuple[float, float, float], rotation: float) -> float:
        x, y, h, yaw = self.tip()
        tx, ty, th = self.kin.clip(x + translation[0], y + translation[1], h + translation[2])
        self._go_to(tx, ty, th, math.remainder(yaw + rotation, 2 * math.pi))
        return self.tip()[2]

    def move_to_height(self, height: float) -> float:
        x, y, _, yaw = self.tip()
        self._go_to(x, y, self.kin.clip(x, y, height)[2], yaw)
        return self.tip()[2]

    def _through(self, waypoints: list[tuple[float, float, float]]) -> float:
        yaw = self.tip()[3]
        for x, y, h in waypoints:
            self._go_to(x, y, h, yaw)
        return self.tip()[2]

    def out_of_view(self) -> float:
        x, y, _, _ = self.tip()
        return self._through(self.kin.out_of_view_waypoints(x, y))

    def _start_pose(self) -> tuple[list[str], float]:
        """Episode start: above the bin centre at the start height, azimuth 0."""
        g = self.config.geometry
        self._go_to(g.bin_center[0], g.bin_center[1], g.workspace.start_height, 0.0)
        return [], self.tip()[2]

    def over_bin(self, height: float) -> float:
        return self._through(self.kin.over_bin_waypoints(height))


class TrajectoryArm(_CartesianArm):
    def __init__(self, node: Node, config: HardwareArmConfig) -> None:
        super().__init__(config)
        self.node = node
        self._joints: np.ndarray | None = None
        self._update = threading.Condition()
        group = ReentrantCallbackGroup()
        node.create_subscription(JointState, config.joint_state_topic, self._on_joint_state, 10,
                                 callback_group=group)
        self.trajectory = node.create_publisher(JointTrajectory, config.trajectory_topic, 10)

    def _on_joint_state(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        if not all(n in index for n in JOINT_NAMES):
            return
        with self._update:
            self._joints = np.array([msg.position[index[n]] for n in JOINT_NAMES])
            self._update.notify_all()

    def joints(self) -> np.ndarray:
        with self._update:
            if self._joints is None and not self._update.wait_for(
                lambda: self._joints is not None, self.config.timeout_s
            ):
                raise TimeoutError(f"no {self.config.joint_state_topic} received")
            return self._joints.copy()

    def tip(self) -> tuple[float, float, float, float]:
        return self.kin.fingertip(self.joints())

    def go_joints(self, q: np.ndarray) -> None:
        msg = JointTrajectory(joint_names=list(JOINT_NAMES))
        msg.points = [JointTrajectoryPoint(positions=[float(v) for v in q],
                                           time_from_start=_duration(self.config.move_duration_s))]
        self.trajectory.publish(msg)
        with self._update:
            reached = self._update.wait_for(
                lambda: self._joints is not None
                and float(np.max(np.abs(self._joints - q))) < self.config.joint_tolerance,
                self.config.move_duration_s + self.config.timeout_s,
            )
        if not reached:
            raise TimeoutError(f"arm did not reach {np.round(q, 3).tolist()} in time")

    def _go_to(self, x: float, y: float, height: float, yaw: float) -> None:
        self.go_joints(self.kin.solve(x, y, height, yaw, self.joints()))

    def reset(self, seed: int) -> tuple[list[str], float]:
        self.go_joints(np.array(HOME))
        return self._start_pose()


class ServoArm(_CartesianArm):
    def __init__(self, node: Node, config: HardwareArmConfig) -> None:
        super().__init__(config)
        self.node = node
        self._pose: tuple[float, float, float, float] | None = None
        self._lock = threading.Lock()
        node.create_subscription(PoseStamped, config.pose_topic, self._on_pose, 10,
                                 callback_group=ReentrantCallbackGroup())
        self.twist = node.create_publisher(TwistStamped, config.twist_topic, 10)

    def _on_pose(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        with self._lock:
            self._pose = (p.x, p.y, p.z - self.config.geometry.floor_z, yaw)

    def tip(self) -> tuple[float, float, float, float]:
        deadline = time.monotonic() + self.config.timeout_s
        while True:
            with self._lock:
                if self._pose is not None:
                    return self._pose
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {self.config.pose_topic} received")
            time.sleep(0.01)

    def _publish(self, v: np.ndarray, yaw_rate: float) -> None:
        msg = TwistStamped()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = self.config.base_frame
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(c) for c in v)
        msg.twist.angular.z = float(yaw_rate)
        self.twist.publish(msg)

    def _go_to(self, x: float, y: float, height: float, yaw: float) -> None:
        cfg = self.config
        deadline = time.monotonic() + cfg.timeout_s
        period = 1.0 / cfg.servo_rate_hz
        while True:
            px, py, ph, pyaw = self.tip()
            error = np.array([x - px, y - py, height - ph])
            yaw_error = math.remainder(yaw - pyaw, 2 * math.pi)
            if np.linalg.norm(error) < cfg.position_tolerance and abs(yaw_error) < 0.02:
                self._publish(np.zeros(3), 0.0)
                return
            if time.monotonic() > deadline:
                self._publish(np.zeros(3), 0.0)
                raise TimeoutError(f"servo did not reach ({x:.3f}, {y:.3f}, {height:.3f})")
            v = cfg.servo_gain * error
            speed = np.linalg.norm(v)
            if speed > cfg.servo_max_speed:
                v *= cfg.servo_max_speed / speed
            self._publish(v, cfg.servo_gain * yaw_error)
            time.sleep(period)

    def reset(self, seed: int) -> tuple[list[str], float]:
        return self._start_pose()


@dataclass(frozen=True)
class HardwareGripperConfig:
    trajectory_topic: str = "/gripper_controller/joint_trajectory"  # JointTrajectory commands
    joint_names: tuple[str, ...] = ("left_finger_joint", "right_finger_joint")  # finger joints
    open_positions: tuple[float, ...] = (-0.3, 0.3)  # finger joint positions, open
    closed_positions: tuple[float, ...] = (0.0, 0.0)  # finger joint positions, closed
    move_duration_s: float = bounded(0.5, gt=0)  # s to open or close; the node waits it out

    def __post_init__(self) -> None:
        check_bounds(self)


class TrajectoryGripper:
    def __init__(self, node: Node, config: HardwareGripperConfig) -> None:
        self.config = config
        self.trajectory = node.create_publisher(JointTrajectory, config.trajectory_topic, 10)

    def set_closed(self, closed: bool) -> None:
        c = self.config
        target = c.closed_positions if closed else c.open_positions
        self.trajectory.publish(JointTrajectory(
            joint_names=list(c.joint_names),
            points=[JointTrajectoryPoint(positions=list(target),
                                         time_from_start=_duration(c.move_duration_s))]))
        time.sleep(c.move_duration_s)  # position-controlled fingers: wait out the motion


@dataclass(frozen=True)
class TopicCameraConfig:
    image_topic: str = "/camera/color/image_raw"  # rgb8 Image stream of the cell's camera
    timeout_s: float = bounded(5.0, gt=0)  # s to wait for a frame after a capture request

    def __post_init__(self) -> None:
        check_bounds(self)


class TopicCamera:
    """The first rgb8 frame that arrives after the capture request (so it shows the arm at
    rest after the last motion)."""

    def __init__(self, node: Node, config: TopicCameraConfig) -> None:
        self.config = config
        self._frame: tuple[float, np.ndarray] | None = None
        self._update = threading.Condition()
        node.create_subscription(Image, config.image_topic, self._on_image,
                                 qos_profile_sensor_data, callback_group=ReentrantCallbackGroup())

    def _on_image(self, msg: Image) -> None:
        with self._update:
            self._frame = (time.monotonic(), image_from_msg(msg).copy())
            self._update.notify_all()

    def capture(self) -> np.ndarray:
        asked = time.monotonic()
        with self._update:
            if not self._update.wait_for(
                lambda: self._frame is not None and self._frame[0] > asked, self.config.timeout_s
            ):
                raise TimeoutError(f"no frame on {self.config.image_topic} within "
                                   f"{self.config.timeout_s} s")
            return self._frame[1]
