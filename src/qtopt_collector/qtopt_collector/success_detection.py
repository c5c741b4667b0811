"""Grasp success by image subtraction after a drop test (Kalashnikov et al. 2018, App. D.3).

With the arm out of view, image the bin; drop whatever the gripper holds; image again. If an
object was held, it now lies in the bin and the two images differ. Pixels whose largest channel
difference exceeds ``pixel_threshold`` are changed; a morphological opening removes speckle; the
grasp counts as a success when the largest changed blob covers ``min_area_fraction`` of the
image. Small objects are the known risk (the paper saw 3 of 28 failures mislabeled).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SuccessDetectorConfig:
    pixel_threshold: int = 25  # 0-255, largest channel |difference|
    open_kernel: int = 2  # px, side of the square opening kernel (1 disables)
    min_area_fraction: float = 0.001  # of the image, for the largest changed blob


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
