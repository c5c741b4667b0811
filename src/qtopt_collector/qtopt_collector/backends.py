"""Device backends behind the cell nodes' ROS interfaces (no rclpy here).

The camera, arm and gripper nodes each wrap a backend. The simulated ones share one
:class:`~qtopt_collector.sim_cell.SimCell`; the hardware ones (in ``hardware_backends``) drive a
real KUKA through the standard ROS 2 interfaces a driver stack offers.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from qtopt_collector.sim_cell import SimCell
from qtopt_policy.spec import Action


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


class SimCamera:
    def __init__(self, cell: SimCell) -> None:
        self.cell = cell

    def capture(self) -> np.ndarray:
        return self.cell.render()


class SimArm:
    def __init__(self, cell: SimCell) -> None:
        self.cell = cell

    def reset(self, seed: int) -> tuple[list[str], float]:
        observation = self.cell.reset(seed)
        return list(self.cell.object_ids), observation.height_to_bottom

    def move_relative(self, translation: tuple[float, float, float], rotation: float) -> float:
        # The gripper keeps its state: the gripper node commands it separately.
        self.cell.execute(Action(translation, rotation, self.cell.gripper_closed, False))
        return self.cell.fingertip_height()

    def move_to_height(self, height: float) -> float:
        self.cell.move_to(self.cell.target[:2], height)
        return self.cell.fingertip_height()

    def out_of_view(self) -> float:
        self.cell.move_out_of_view()
        return self.cell.fingertip_height()

    def over_bin(self, height: float) -> float:
        self.cell.return_over_bin(height)
        return self.cell.fingertip_height()


class SimGripper:
    def __init__(self, cell: SimCell) -> None:
        self.cell = cell

    def set_closed(self, closed: bool) -> None:
        self.cell.set_gripper(closed)
