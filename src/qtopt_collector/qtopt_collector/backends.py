"""Device backends behind the cell nodes' ROS interfaces (no rclpy here).

The camera, arm and gripper nodes each wrap a backend. The simulated ones are the camera, arm
and gripper of one :class:`~qtopt_collector.sim_cell.SimCell` (``cell.camera``, ``cell.arm``,
``cell.gripper``); the hardware ones (in ``hardware_backends``) drive a real KUKA through the
standard ROS 2 interfaces a driver stack offers.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class CameraBackend(Protocol):
    def capture(self) -> np.ndarray:
        """One rgb8 frame, H x W x 3."""


class ArmBackend(Protocol):
    def reset(self, seed: int) -> tuple[list[str], float]:
        """Start an episode; return the object ids (if known) and the fingertip height."""

    def move_relative(self, translation: tuple[float, float, float], rotation: float) -> float:
        """One MDP step of the arm; return the fingertip height above the bin floor, m."""

    def move_to_height(self, height: float) -> float: ...

    def out_of_view(self) -> float: ...

    def over_bin(self, height: float) -> float: ...


class GripperBackend(Protocol):
    def set_closed(self, closed: bool) -> None: ...
