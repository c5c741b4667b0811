"""The simulated cell's configuration and KukaDiverseObjectEnv's object split."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from qtopt_collector.success_detection import LABELS, DropTestConfig
from qtopt_collector.workspace import WorkspaceConfig
from qtopt_policy.spec import ActionBounds, CameraSpec

NUM_OBJECTS = 1000


def object_split(split: str) -> list[int]:
    """KukaDiverseObjectEnv's convention: ids ending in 0 are test objects."""
    if split == "test":
        return [i for i in range(NUM_OBJECTS) if i % 10 == 0]
    if split == "train":
        return [i for i in range(NUM_OBJECTS) if i % 10 != 0]
    raise ValueError(f"object split {split!r}: expected 'train' or 'test'")


@dataclass(frozen=True)
class SimCellConfig:
    """The simulated cell; fields mirror the sim cell node's parameters."""

    camera_width: int = 72  # rendered frame; the policy center-crops its input from it
    camera_height: int = 72
    camera_fov_deg: float = 48.0
    camera_distance: float = 0.75  # m from the bin centre
    camera_yaw_deg: float = 0.0  # beside the robot's shoulder, looking down into the bin
    camera_pitch_deg: float = -65.0
    camera_target_height: float = 0.0  # m above the bin floor: the point the camera aims at
    object_split: str = "train"
    # Episodes per world: 1 rebuilds the bin from the seed every episode; K > 1 keeps it for K
    # episodes, the arm restarting above the bin with the grasped object dropped back in.
    respawn_every: int = 1
    # How an episode is labeled: "detector", image subtraction after the drop test (App. D.3,
    # what a real cell does); "truth", the simulator's held-object check after the lift, without
    # the drop test's motions (the object is then dropped back into the bin).
    label: str = "detector"
    min_objects: int = 1  # objects per episode drawn uniformly in [min, max]
    max_objects: int = 10
    substeps: int = 80  # physics steps of 1/240 s per action
    settle_steps: int = 240  # physics steps to let dropped objects come to rest, at least
    max_settle_steps: int = 1200  # then up to this many until every object is at rest
    rest_speed: float = 0.01  # m/s: an object slower than this (and rest_spin) is at rest
    rest_spin: float = 0.1  # rad/s
    success_height: float = 0.10  # ground truth: an object this high above the floor is held
    finger_force: float = 30.0  # N for the finger position motors
    arm_force: float = 200.0
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    bounds: ActionBounds = field(default_factory=ActionBounds)
    drop_test: DropTestConfig = field(default_factory=DropTestConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects <= 10:
            raise ValueError(
                f"objects per episode [{self.min_objects}, {self.max_objects}]: expected "
                "1 <= min <= max <= 10"
            )
        object_split(self.object_split)
        if self.respawn_every < 1:
            raise ValueError(f"respawn_every {self.respawn_every}: expected >= 1")
        if self.label not in LABELS:
            raise ValueError(f"label {self.label!r}: expected one of {LABELS}")
        if self.max_settle_steps < self.settle_steps:
            raise ValueError(
                f"max_settle_steps {self.max_settle_steps}: expected at least settle_steps "
                f"({self.settle_steps})"
            )

    def camera(self) -> CameraSpec:
        """The rendered camera, as recorded in bags and models (provenance)."""
        return CameraSpec(self.camera_width, self.camera_height, self.camera_fov_deg,
                          self.camera_distance, self.camera_yaw_deg, self.camera_pitch_deg,
                          self.camera_target_height)

    def with_camera(self, camera: CameraSpec) -> SimCellConfig:
        """This cell rendering through ``camera`` (e.g. the one a model was trained with)."""
        return dataclasses.replace(
            self, camera_width=camera.width, camera_height=camera.height,
            camera_fov_deg=camera.fov_deg, camera_distance=camera.distance,
            camera_yaw_deg=camera.yaw_deg, camera_pitch_deg=camera.pitch_deg,
            camera_target_height=camera.target_height)
