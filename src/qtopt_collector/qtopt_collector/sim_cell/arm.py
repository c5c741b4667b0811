"""The simulated KUKA LBR IIWA arm, an ``ArmBackend`` itself (App. C).

Control is Cartesian: each MDP step moves the commanded fingertip position by a bounded
translation, clipped to the workspace, turns the gripper's azimuth, and drives the joints there
through PyBullet's IK for ``substeps`` physics steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pybullet as pb

from qtopt_collector.sim_cell.config import SimCellConfig
from qtopt_collector.sim_cell.gripper import SimGripper
from qtopt_collector.sim_cell.world import ARM_JOINTS, FLOOR_Z, REST_POSE, TRAY_POSITION, SimWorld
from qtopt_policy.spec import Observation

EE_LINK = 6
TIP_LINKS = (10, 13)


class SimArm:
    """The arm of the robot in ``world``, carrying ``gripper``. ``target`` is the commanded
    (x, y, fingertip height above the bin floor), ``yaw`` the gripper's azimuth.

    The sim arm node also serves ``cell/reset``: :meth:`reset` runs ``start_episode`` (the
    cell's :meth:`~qtopt_collector.sim_cell.SimCell.reset`)."""

    target: np.ndarray  # set at the episode start, as are yaw and the tool offset
    yaw: float

    def __init__(self, world: SimWorld, gripper: SimGripper, config: SimCellConfig,
                 start_episode: Callable[[int], Observation]) -> None:
        self.world = world
        self.gripper = gripper
        self.config = config
        self._start_episode = start_episode

    # -- ArmBackend -----------------------------------------------------------------------
    def reset(self, seed: int) -> tuple[list[str], float]:
        observation = self._start_episode(seed)
        return list(self.world.object_ids), observation.height_to_bottom

    def move_relative(self, translation: tuple[float, float, float], rotation: float) -> float:
        # The gripper keeps its state: the gripper node commands it separately.
        self.step(translation, rotation)
        return self.fingertip_height()

    def move_to_height(self, height: float) -> float:
        self.move_to(self.target[:2], height)
        return self.fingertip_height()

    def out_of_view(self) -> float:
        self.move_out_of_view()
        return self.fingertip_height()

    def over_bin(self, height: float) -> float:
        self.return_over_bin(height)
        return self.fingertip_height()

    # -- state ----------------------------------------------------------------------------
    def fingertip_height(self) -> float:
        """Lowest point of the two fingertips above the bin floor, m."""
        lows = [pb.getAABB(self.world.robot, link, physicsClientId=self.world.client)[0][2]
                for link in TIP_LINKS]
        return float(min(lows) - FLOOR_Z)

    # -- motion ---------------------------------------------------------------------------
    def start(self) -> None:
        """The episode's start pose: azimuth 0, fingers open, ``start_height`` above the bin
        centre."""
        self.yaw = 0.0
        centre = np.array(TRAY_POSITION[:2])
        self._teleport(np.array([*centre, 0.0]), self.config.workspace.start_height)

    def step(self, translation: tuple[float, float, float], rotation: float) -> None:
        """The arm's part of one MDP action (App. D.2): translate the target (workspace
        clipped), turn the azimuth, and drive there for ``substeps`` physics steps."""
        # float32, as GraspAction and ArmCommand carry them: the in-process loop and the ROS
        # graph then drive the physics with identical numbers.
        t = np.asarray(translation, dtype=np.float32).astype(np.float64)
        rotation = float(np.float32(rotation))
        xy, height = self._clip_target(self.target[:2] + t[:2], float(self.target[2] + t[2]))
        self.target = np.array([xy[0], xy[1], height])
        self.yaw = float(np.clip(self.yaw + rotation, -math.pi, math.pi))
        self._drive(self.target, self.config.substeps)

    def move_to(self, xy: np.ndarray, height: float, steps: int | None = None) -> None:
        """Scripted motion outside the MDP (lift after the episode, drop test)."""
        xy, height = self._clip_target(np.asarray(xy, dtype=np.float64), height)
        self.target = np.array([xy[0], xy[1], height])
        self._drive(self.target, steps or self.config.substeps)

    @property
    def _lift_height(self) -> float:
        # float32, as ArmCommand carries it: a kept bin must not make the in-process loop and
        # the ROS graph drift apart through rounding.
        return float(np.float32(self.config.drop_test.lift_height))

    def lift(self) -> None:
        """Straight up to the drop test's ``lift_height`` (after the episode, App. D.3)."""
        self.move_to(self.target[:2], self._lift_height)

    def move_out_of_view(self) -> None:
        """Up, then sideways out of the camera's view (App. D.3), keeping the gripper state;
        then wait until the objects in the bin are at rest."""
        x, y, _ = self.target
        cx, cy = TRAY_POSITION[:2]
        workspace = self.config.workspace
        h, dy = workspace.out_of_view_height, workspace.out_of_view_offset_y
        self._move_through([(x, y, h), (cx, cy + dy, h)])
        self.world.settle()

    def return_over_bin(self, height: float | None = None) -> None:
        """From out of view back above the bin centre (at the lift height by default)."""
        cx, cy = TRAY_POSITION[:2]
        h = self.config.workspace.out_of_view_height
        self._move_through([(cx, cy, h), (cx, cy, height or self._lift_height)])

    def _move_through(self, waypoints: list[tuple[float, float, float]]) -> None:
        """Cartesian waypoints (x, y, fingertip height) outside the workspace clip."""
        for x, y, height in waypoints:
            self.target = np.array([x, y, height])
            self._drive(self.target, self.config.substeps)

    # -- kinematics -----------------------------------------------------------------------
    def _clip_target(self, xy: np.ndarray, height: float) -> tuple[np.ndarray, float]:
        centre = np.array(TRAY_POSITION[:2])
        workspace = self.config.workspace
        half = np.array(workspace.half_extent)
        xy = np.clip(xy, centre - half, centre + half)
        height = float(np.clip(height, workspace.min_height, workspace.max_height))
        return xy, height

    def _ee_position(self, xy: np.ndarray, height: float) -> list[float]:
        return [float(xy[0]), float(xy[1]), FLOOR_Z + height + self._tool_offset]

    def _ik(self, position: list[float]) -> list[float]:
        orn = pb.getQuaternionFromEuler([0.0, -math.pi, self.yaw])
        q = pb.calculateInverseKinematics(
            self.world.robot, EE_LINK, position, orn,
            lowerLimits=[-2.96, -2.09, -2.96, -2.09, -2.96, -2.09, -3.05],
            upperLimits=[2.96, 2.09, 2.96, 2.09, 2.96, 2.09, 3.05],
            jointRanges=[5.8, 4.0, 5.8, 4.0, 5.8, 4.0, 6.0], restPoses=list(REST_POSE),
            maxNumIterations=50, physicsClientId=self.world.client,
        )
        return list(q[:7])

    def _teleport(self, target: np.ndarray, height: float) -> None:
        """Place the arm exactly (episode start only), and learn the tool offset."""
        c, robot = self.world.client, self.world.robot
        ee_guess = [float(target[0]), float(target[1]), FLOOR_Z + height + 0.25]
        for _ in range(3):  # IK + measure the fingertip offset below the end effector
            for j, q in zip(ARM_JOINTS, self._ik(ee_guess), strict=True):
                pb.resetJointState(robot, j, q, physicsClientId=c)
            self.gripper.reset_open()  # the offset is that of the open fingers
            ee_z = pb.getLinkState(robot, EE_LINK, physicsClientId=c)[4][2]
            self._tool_offset = ee_z - (FLOOR_Z + self.fingertip_height())
            ee_guess[2] = FLOOR_Z + height + self._tool_offset
        self.target = np.array([target[0], target[1], height])
        self._drive(self.target, steps=10)

    def _drive(self, target: np.ndarray, steps: int) -> None:
        q = self._ik(self._ee_position(target[:2], float(target[2])))
        c = self.world.client
        for j, qj in zip(ARM_JOINTS, q, strict=True):
            pb.setJointMotorControl2(self.world.robot, j, pb.POSITION_CONTROL, qj,
                                     force=self.config.arm_force, maxVelocity=2.0,
                                     physicsClientId=c)
        for _ in range(steps):
            pb.stepSimulation(physicsClientId=c)
