"""The simulated two-finger gripper on the KUKA's flange, a ``GripperBackend`` itself."""

from __future__ import annotations

import pybullet as pb

from qtopt_collector.sim_cell.config import SimCellConfig
from qtopt_collector.sim_cell.world import FLOOR_Z, SimWorld

FINGER_JOINTS = (8, 11)  # left, right finger (opposite signs)
TIP_JOINTS = (10, 13)
OPEN_ANGLE = 0.3  # rad per finger when open


class SimGripper:
    """The fingers of the robot in ``world``; ``closed`` is the commanded state."""

    def __init__(self, world: SimWorld, config: SimCellConfig) -> None:
        self.world = world
        self.config = config
        self.closed = False

    def set_closed(self, closed: bool, steps: int | None = None) -> None:
        """Open or close the fingers and let them move (``steps`` physics steps, by default
        half an action's); commanding the current state is a no-op, as for a real gripper."""
        if closed == self.closed:
            return
        self.closed = closed
        self._set_fingers(0.0 if closed else OPEN_ANGLE)
        for _ in range(steps or self.config.substeps // 2):
            pb.stepSimulation(physicsClientId=self.world.client)

    def reset_open(self) -> None:
        """Put the fingers open at once, without physics steps (episode start only)."""
        self.closed = False
        self._set_fingers(OPEN_ANGLE, reset=True)

    def _set_fingers(self, angle: float, reset: bool = False) -> None:
        c, robot = self.world.client, self.world.robot
        for joint, sign in zip(FINGER_JOINTS, (-1.0, 1.0), strict=True):
            if reset:
                pb.resetJointState(robot, joint, sign * angle, physicsClientId=c)
            pb.setJointMotorControl2(robot, joint, pb.POSITION_CONTROL, sign * angle,
                                     force=self.config.finger_force, physicsClientId=c)
        for joint in TIP_JOINTS:
            pb.setJointMotorControl2(robot, joint, pb.POSITION_CONTROL, 0.0,
                                     force=self.config.finger_force, physicsClientId=c)

    def held(self) -> list[int]:
        """Indices of the world's objects touching the gripper at least ``success_height``
        above the bin floor (touching: an object resting high on a pile is not held)."""
        c, w = self.world.client, self.world
        return [k for k, uid in enumerate(w.objects)
                if pb.getBasePositionAndOrientation(uid, physicsClientId=c)[0][2] - FLOOR_Z
                > self.config.success_height
                and pb.getContactPoints(bodyA=w.robot, bodyB=uid, physicsClientId=c)]
