"""The simulated cell's configuration and KukaDiverseObjectEnv's object split."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from qtopt_collector.success_detection import DropTestConfig
from qtopt_collector.workspace import WorkspaceConfig
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.model_file import ModelFileInfo, read_model_info
from qtopt_policy.names import LABELS, OBJECT_SPLITS
from qtopt_policy.spec import ActionBounds, CameraSpec

NUM_OBJECTS = 1000


def object_split(split: str) -> list[int]:
    """KukaDiverseObjectEnv's convention: ids ending in 0 are test objects."""
    if split == "test":
        return [i for i in range(NUM_OBJECTS) if i % 10 == 0]
    if split == "train":
        return [i for i in range(NUM_OBJECTS) if i % 10 != 0]
    raise ValueError(f"object split {split!r}: expected one of {OBJECT_SPLITS}")


@dataclass(frozen=True)
class SimCellConfig:
    """The simulated cell; fields mirror the sim cell node's parameters."""

    # px of the rendered frame; the policy center-crops its input from it
    camera_width: int = bounded(72, ge=1)
    camera_height: int = bounded(72, ge=1)  # px of the rendered frame
    camera_fov_deg: float = bounded(48.0, gt=0, lt=180)  # vertical field of view, degrees
    camera_distance: float = bounded(0.75, gt=0)  # m from the bin centre
    camera_yaw_deg: float = 0.0  # degrees; 0: beside the robot's shoulder, looking into the bin
    camera_pitch_deg: float = -65.0  # degrees; negative looks down
    camera_target_height: float = 0.0  # m above the bin floor: the point the camera aims at
    object_split: str = "train"  # objects to draw: "train" or "test" (ids ending in 0)
    # Episodes per world: 1 rebuilds the bin from the seed every episode; K > 1 keeps it for K
    # episodes, the arm restarting above the bin with the grasped object dropped back in.
    respawn_every: int = bounded(1, ge=1)
    # A kept world waits for the objects dropped back to come to rest before the next episode,
    # and removes those still moving; False: they keep falling during its first steps, and only
    # objects off the tray are removed (cheaper: docs/benchmarks.md, "Collector")
    restart_settle: bool = True
    # How an episode is labeled: "detector", image subtraction after the drop test (App. D.3,
    # what a real cell does); "truth", the simulator's held-object check after the lift, without
    # the drop test's motions (the object is then dropped back into the bin).
    label: str = "detector"
    min_objects: int = bounded(1, ge=1, le=10)  # objects per episode drawn uniformly in [min, max]
    max_objects: int = bounded(10, ge=1, le=10)  # the upper end of that draw
    substeps: int = bounded(80, ge=1)  # physics steps of 1/240 s per action
    # physics steps to let dropped objects come to rest, at least
    settle_steps: int = bounded(240, ge=0)
    # then up to this many until every object is at rest
    max_settle_steps: int = bounded(1200, ge=0)
    # m/s: an object slower than this (and rest_spin) is at rest
    rest_speed: float = bounded(0.01, ge=0)
    rest_spin: float = bounded(0.1, ge=0)  # rad/s: rest_speed's angular counterpart
    # ground truth: an object this high above the floor is held
    success_height: float = bounded(0.10, ge=0)
    finger_force: float = bounded(30.0, ge=0)  # N for the finger position motors
    arm_force: float = bounded(200.0, ge=0)  # max force of the arm's joint position motors
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    bounds: ActionBounds = field(default_factory=ActionBounds)
    drop_test: DropTestConfig = field(default_factory=DropTestConfig)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects {self.min_objects}: expected at most max_objects "
                             f"({self.max_objects})")
        object_split(self.object_split)
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

    def for_model(self, model: ModelFileInfo | str) -> SimCellConfig:
        """This cell rendering what a model was trained on (the camera its metadata records),
        so a cell serving it shows the view it learned from; unchanged for no model (``""``) or
        one that records no camera. ``model``: its checked file's info, or its path. Raises
        ModelLoadError for a file that is not a whole model, ValueError for one whose input is
        larger than the frames."""
        if not model:
            return self
        info = model if isinstance(model, ModelFileInfo) else read_model_info(model)
        known = info.camera is not None and info.camera.known
        cell = self.with_camera(info.camera) if known else self
        if min(cell.camera_width, cell.camera_height) < info.image_size:
            raise ValueError(
                f"model {info.path}: takes {info.image_size} px images, larger than the "
                f"cell's {cell.camera_width}x{cell.camera_height} px frames; expected a model "
                "that records its camera or takes at most the frame's size")
        return cell
