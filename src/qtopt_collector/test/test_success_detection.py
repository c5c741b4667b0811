"""Image subtraction (App. D.3) on synthetic and rendered cases."""

import numpy as np
import pybullet as pb
import pytest

from qtopt_collector.sim_cell import FLOOR_Z, TRAY_POSITION, SimCell, SimCellConfig
from qtopt_collector.success_detection import SuccessDetectorConfig, detect_grasp_success


def test_identical_images_are_a_failure():
    img = np.random.default_rng(0).integers(0, 256, (72, 72, 3), dtype=np.uint8)
    result = detect_grasp_success(img, img.copy())
    assert not result.success and result.changed_fraction == 0.0


def test_a_new_blob_is_a_success_and_speckle_is_not():
    before = np.full((72, 72, 3), 80, np.uint8)
    blob = before.copy()
    blob[30:38, 30:38] = (200, 30, 30)
    assert detect_grasp_success(before, blob).success
    speckle = before.copy()
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, 72, 40), rng.integers(0, 72, 40)
    speckle[ys, xs] = 255  # isolated pixels: removed by the opening
    result = detect_grasp_success(before, speckle)
    assert not result.success
    assert not detect_grasp_success(before, blob, SuccessDetectorConfig(min_area_fraction=0.05)
                                     ).success


def test_mismatched_images_are_rejected():
    with pytest.raises(ValueError, match=r"\(4, 4, 3\).*\(5, 5, 3\)"):
        detect_grasp_success(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 5, 3), np.uint8))


@pytest.fixture(scope="module")
def settled_cell():
    cell = SimCell(SimCellConfig(min_objects=3, max_objects=3))
    cell.reset(5)
    cell.move_out_of_view()
    yield cell
    cell.close()


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.3])
def test_rendered_drop_of_normal_and_small_objects_is_detected(settled_cell, scale):
    """An object arriving in the bin (as after a drop) changes the image; 0.3x is small."""
    cell = settled_cell
    before = cell.render()
    uid = pb.loadURDF("random_urdfs/123/123.urdf",
                      [TRAY_POSITION[0] + 0.05, TRAY_POSITION[1] - 0.05, FLOOR_Z + 0.1],
                      globalScaling=scale, physicsClientId=cell.client)
    cell.settle()
    result = detect_grasp_success(before, cell.render())
    pb.removeBody(uid, physicsClientId=cell.client)
    cell.settle()
    assert result.success, result.largest_blob_fraction


def test_rendered_empty_gripper_drop_test_is_a_failure():
    cell = SimCell(SimCellConfig(min_objects=2, max_objects=2))
    try:
        cell.reset(9)  # the arm never reaches down: nothing can be held
        drop = cell.drop_test()
        assert drop.ground_truth is False
        assert not detect_grasp_success(drop.before, drop.after).success
    finally:
        cell.close()
