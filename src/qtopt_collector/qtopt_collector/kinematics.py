"""KUKA LBR IIWA kinematics for the hardware backends, with PyBullet as an offline solver.

No simulation runs here: the shipped ``kuka_iiwa/model.urdf`` is loaded into a private DIRECT
client only to compute forward and inverse kinematics of the fingertip point, with the gripper
pointing down and turned by an azimuth (Sec. 5's action frame). Heights are above the bin floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pybullet as pb
import pybullet_data

from qtopt_collector.workspace import WorkspaceConfig
from qtopt_policy.config_fields import bounded, check_bounds

JOINT_NAMES = tuple(f"lbr_iiwa_joint_{i}" for i in range(1, 8))
HOME = (0.0, 0.41, 0.0, -1.59, 0.0, 1.14, 0.0)
FLANGE_LINK = 6
LOWER = (-2.96, -2.09, -2.96, -2.09, -2.96, -2.09, -3.05)
UPPER = (2.96, 2.09, 2.96, 2.09, 2.96, 2.09, 3.05)


@dataclass(frozen=True)
class CellGeometry:
    """Where the bin is in the robot base frame; measure it on the cell (the defaults are the
    simulated cell's)."""

    bin_center: tuple[float, float] = (0.74, 0.075)  # m, (x, y) in the base frame
    floor_z: float = -0.254  # m, bin floor in the base frame
    tool_length: float = bounded(0.25, ge=0)  # m from the flange to the fingertips
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)

    def __post_init__(self) -> None:
        check_bounds(self)


class KukaKinematics:
    def __init__(self, geometry: CellGeometry = CellGeometry()) -> None:
        self.geometry = geometry
        self.client = pb.connect(pb.DIRECT)
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        self.robot = pb.loadURDF("kuka_iiwa/model.urdf", useFixedBase=True,
                                 physicsClientId=self.client)

    def _set(self, q: np.ndarray) -> None:
        for j, qj in enumerate(q):
            pb.resetJointState(self.robot, j, float(qj), physicsClientId=self.client)

    def fingertip(self, q: np.ndarray) -> tuple[float, float, float, float]:
        """(x, y, height above the bin floor, azimuth) of the fingertips for joints ``q``."""
        self._set(q)
        pos, orn = pb.getLinkState(self.robot, FLANGE_LINK, computeForwardKinematics=True,
                                   physicsClientId=self.client)[4:6]
        axis = np.array(pb.getMatrixFromQuaternion(orn)).reshape(3, 3)[:, 2]
        tip = np.array(pos) + self.geometry.tool_length * axis
        # Pointing down is roll pi; the azimuth is the Euler yaw relative to that pose.
        yaw = math.remainder(pb.getEulerFromQuaternion(orn)[2] + math.pi, 2 * math.pi)
        return float(tip[0]), float(tip[1]), float(tip[2] - self.geometry.floor_z), float(yaw)

    def solve(self, x: float, y: float, height: float, yaw: float, seed: np.ndarray
              ) -> np.ndarray:
        """Joints putting the fingertips at (x, y, height), pointing down, turned by ``yaw``."""
        orn = pb.getQuaternionFromEuler([0.0, -math.pi, yaw])
        flange = [x, y, self.geometry.floor_z + height + self.geometry.tool_length]
        self._set(seed)
        q = pb.calculateInverseKinematics(
            self.robot, FLANGE_LINK, flange, orn, lowerLimits=list(LOWER),
            upperLimits=list(UPPER), jointRanges=[u - lo for lo, u in zip(LOWER, UPPER,
                                                                           strict=True)],
            restPoses=[float(v) for v in seed], maxNumIterations=100, residualThreshold=1e-5,
            physicsClientId=self.client,
        )
        return np.clip(np.array(q[:7]), LOWER, UPPER)

    def clip(self, x: float, y: float, height: float) -> tuple[float, float, float]:
        """Workspace hard bounds (Sec. 6: the cell must never leave them)."""
        (cx, cy), w = self.geometry.bin_center, self.geometry.workspace
        hx, hy = w.half_extent
        return (float(np.clip(x, cx - hx, cx + hx)), float(np.clip(y, cy - hy, cy + hy)),
                float(np.clip(height, w.min_height, w.max_height)))

    def out_of_view_waypoints(self, x: float, y: float) -> list[tuple[float, float, float]]:
        (cx, cy), w = self.geometry.bin_center, self.geometry.workspace
        h = w.out_of_view_height
        return [(x, y, h), (cx, cy + w.out_of_view_offset_y, h)]

    def over_bin_waypoints(self, height: float) -> list[tuple[float, float, float]]:
        g = self.geometry
        return [(*g.bin_center, g.workspace.out_of_view_height), (*g.bin_center, height)]
