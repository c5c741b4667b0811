"""Grasp success by image subtraction after a drop test (Kalashnikov et al. 2018, App. D.3).

With the arm out of view, image the bin; drop whatever the gripper holds; image again. If an
object was held, it now lies in the bin and the two images differ. Pixels whose largest channel
difference exceeds ``pixel_threshold`` are changed; a morphological opening removes speckle; the
grasp counts as a success when the largest changed blob covers ``min_area_fraction`` of the
image. Small objects are the known risk (the paper saw 3 of 28 failures mislabeled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from qtopt_policy.config_fields import bounded, check_bounds


@dataclass(frozen=True)
class SuccessDetectorConfig:
    pixel_threshold: int = bounded(25, ge=0, le=255)  # 0-255, largest channel |difference|
    open_kernel: int = bounded(2, ge=1)  # px, side of the square opening kernel (1 disables)
    # of the image, for the largest changed blob
    min_area_fraction: float = bounded(0.001, ge=0, le=1)

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class DropTestConfig:
    """The drop test and its label (App. D.3); the sim cell and the success node both run it."""

    # m above the bin floor: after the episode, and to drop from
    lift_height: float = bounded(0.30, ge=0)
    detector: SuccessDetectorConfig = field(default_factory=SuccessDetectorConfig)

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class SuccessResult:
    success: bool
    changed_fraction: float  # all changed pixels after opening, fraction of the image
    largest_blob_fraction: float
    mask: np.ndarray  # uint8 0/255, H x W


def detect_grasp_success(
    before: np.ndarray, after: np.ndarray, config: SuccessDetectorConfig = SuccessDetectorConfig()
) -> SuccessResult:
    """Compare the bin before and after the drop (uint8 H x W x 3 RGB, same shape)."""
    if before.shape != after.shape or before.dtype != np.uint8 or after.dtype != np.uint8:
        raise ValueError(
            f"images {before.shape}/{before.dtype} and {after.shape}/{after.dtype}: expected "
            "two uint8 RGB images of the same shape"
        )
    diff = cv2.absdiff(before, after).max(axis=2)
    _, mask = cv2.threshold(diff, config.pixel_threshold, 255, cv2.THRESH_BINARY)
    if config.open_kernel > 1:
        kernel = np.ones((config.open_kernel, config.open_kernel), np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    largest = int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0
    total = mask.shape[0] * mask.shape[1]
    return SuccessResult(
        success=largest / total >= config.min_area_fraction,
        changed_fraction=float(np.count_nonzero(mask)) / total,
        largest_blob_fraction=largest / total,
        mask=mask,
    )


@dataclass(frozen=True)
class DropTest:
    """Images of the bin with the arm out of view, before and after the drop (App. D.3)."""

    before: np.ndarray
    after: np.ndarray
    ground_truth: bool | None  # simulator truth of "object held above the height"; None if unknown


class DropTestRig(Protocol):
    """The motions and sensing the drop test needs; the sim cell and the ROS success node
    (through the arm, gripper and camera services) both provide them."""

    def lift(self) -> None: ...

    def held_object_ground_truth(self) -> bool | None: ...

    def move_out_of_view(self) -> None: ...

    def capture(self) -> np.ndarray: ...

    def return_over_bin(self) -> None: ...

    def open_gripper(self) -> None: ...


def run_drop_test(rig: DropTestRig) -> DropTest:
    """App. D.3: lift, leave the view, image; back over the bin, drop, leave, image again."""
    rig.lift()
    truth = rig.held_object_ground_truth()
    rig.move_out_of_view()
    before = rig.capture()
    rig.return_over_bin()
    rig.open_gripper()
    rig.move_out_of_view()
    return DropTest(before, rig.capture(), truth)
