"""PyBullet grasping cell: KUKA LBR IIWA with a two-finger gripper over a bin (App. C, D).

Objects follow KukaDiverseObjectEnv's split: directories whose number ends in 0 (100 objects)
are held-out test objects, the other 900 are for training.

- ``config``: :class:`SimCellConfig` and the object split.
- ``world``: :class:`SimWorld`, the PyBullet client with the tray, the robot and the objects.
- ``camera``, ``arm``, ``gripper``: :class:`SimCamera`, :class:`SimArm`, :class:`SimGripper`,
  the devices; each is the backend its ROS node serves (``qtopt_collector.backends``).
- ``cell``: :class:`SimCell`, a world with its devices, run as episodes (the episode loop's
  ``Cell``) and labeled by the drop test or the simulator's truth.
"""

from qtopt_collector.sim_cell.arm import TIP_LINKS, SimArm
from qtopt_collector.sim_cell.camera import SimCamera
from qtopt_collector.sim_cell.cell import SimCell
from qtopt_collector.sim_cell.config import SimCellConfig, object_split
from qtopt_collector.sim_cell.gripper import SimGripper
from qtopt_collector.sim_cell.world import FLOOR_Z, TRAY_POSITION, SimWorld

__all__ = [
    "FLOOR_Z", "TIP_LINKS", "TRAY_POSITION", "SimArm", "SimCamera", "SimCell", "SimCellConfig",
    "SimGripper", "SimWorld", "object_split",
]
