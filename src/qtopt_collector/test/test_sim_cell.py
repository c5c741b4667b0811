"""PyBullet cell: object split, determinism, camera aim, workspace bounds, objects at rest,
the paper's respawn protocol, truth labels, and re-drawn empty bins."""

import numpy as np
import pybullet as pb
import pytest

from qtopt_collector.episode import GraspLabel
from qtopt_collector.sim_cell import FLOOR_Z, TRAY_POSITION, SimCell, SimCellConfig, object_split
from qtopt_collector.success_detection import detect_grasp_success
from qtopt_policy.policies import ScriptedGraspPolicy
from qtopt_policy.spec import MAX_STEPS, Action, ActionBounds, Observation


def test_object_split_follows_kuka_diverse_object_convention():
    train, test = object_split("train"), object_split("test")
    assert len(train) == 900 and len(test) == 100
    assert not set(train) & set(test)
    assert all(i % 10 == 0 for i in test)
    with pytest.raises(ValueError, match="'validation'"):
        object_split("validation")


def test_objects_come_from_the_configured_split():
    cell = SimCell(SimCellConfig(object_split="test", min_objects=4, max_objects=4))
    try:
        cell.reset(3)
        assert len(cell.object_ids) == 4
        assert all(int(name.split("/")[1]) % 10 == 0 for name in cell.object_ids)
    finally:
        cell.close()


def _rollout(seed):
    cell = SimCell(SimCellConfig(min_objects=3, max_objects=3))
    try:
        frames = [cell.reset(seed)]
        for _ in range(3):
            cell.execute(Action((0.02, -0.01, -0.05), 0.1, False, False))
            frames.append(cell.observe())
        cell.execute(Action((0.0, 0.0, 0.0), 0.0, True, False))
        frames.append(cell.observe())
        return frames, list(cell.object_ids)
    finally:
        cell.close()


def test_same_seed_same_episode_and_other_seed_differs():
    a, ids_a = _rollout(11)
    b, ids_b = _rollout(11)
    c, ids_c = _rollout(12)
    assert ids_a == ids_b
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
        assert x.height_to_bottom == y.height_to_bottom
        assert x.gripper_closed == y.gripper_closed
    assert ids_a != ids_c or not np.array_equal(a[0].image, c[0].image)
    assert a[-1].gripper_closed and not a[0].gripper_closed


def test_observation_layout_and_start_height():
    cell = SimCell(SimCellConfig(camera_width=80, camera_height=64, min_objects=1, max_objects=1))
    try:
        obs = cell.reset(0)
        assert obs.image.shape == (64, 80, 3) and obs.image.dtype == np.uint8
        assert obs.height_to_bottom == pytest.approx(0.30, abs=0.01)
        cell.execute(Action((0.0, 0.0, -0.08), 0.0, False, False))
        assert cell.observe().height_to_bottom == pytest.approx(0.22, abs=0.015)
    finally:
        cell.close()


def _pixel_of(cell: SimCell, point: list[float]) -> np.ndarray:
    """Where a world point lands in the camera frame, in normalized device coordinates."""
    view, projection = (np.asarray(m).reshape(4, 4).T for m in cell._camera_matrices())
    clip = projection @ view @ np.array([*point, 1.0])
    return clip[:2] / clip[3]


@pytest.mark.parametrize("aim", [0.0, 0.1])
def test_camera_aims_at_the_configured_height_above_the_bin_centre(aim):
    cell = SimCell(SimCellConfig(camera_target_height=aim))
    try:
        x, y = TRAY_POSITION[:2]
        assert np.allclose(_pixel_of(cell, [x, y, FLOOR_Z + aim]), 0.0, atol=1e-5)
        # The other height is off centre: the field moves the aim point, not just the docs.
        assert abs(_pixel_of(cell, [x, y, FLOOR_Z + 0.1 - aim])[1]) > 0.05
    finally:
        cell.close()


def test_workspace_hard_bounds_hold_and_bad_actions_are_rejected():
    cfg = SimCellConfig(min_objects=1, max_objects=1)
    cell = SimCell(cfg)
    try:
        cell.reset(0)
        for _ in range(8):
            cell.execute(Action((0.05, 0.05, 0.08), 0.0, False, False))
        half = np.array(cfg.workspace.half_extent)
        assert np.all(cell.target[:2] <= np.array(TRAY_POSITION[:2]) + half + 1e-9)
        assert cell.target[2] <= cfg.workspace.max_height
        assert cell.observe().height_to_bottom <= cfg.workspace.max_height + 0.01
        with pytest.raises(ValueError, match="translation"):
            cell.execute(Action((0.2, 0.0, 0.0), 0.0, False, False))
    finally:
        cell.close()


def test_config_rejects_bad_object_counts():
    with pytest.raises(ValueError, match=r"min_objects 0: expected in \[1, 10\]"):
        SimCellConfig(min_objects=0, max_objects=3)
    with pytest.raises(ValueError, match=r"max_objects 11: expected in \[1, 10\]"):
        SimCellConfig(min_objects=2, max_objects=11)
    with pytest.raises(ValueError, match=r"min_objects 5: expected at most max_objects \(4\)"):
        SimCellConfig(min_objects=5, max_objects=4)


@pytest.mark.parametrize("seed", [6, 26, 33])
def test_objects_are_at_rest_when_an_episode_starts(seed):
    """These seeds drop objects that keep sliding or pushing each other apart for seconds;
    after a fixed 1 s settle they would move the bin between the drop test's two images (a
    failure labeled a success; docs/decisions.md, "Collector"). Reset waits for rest and removes
    objects that never get there."""
    cell = SimCell(SimCellConfig())
    try:
        cell.reset(seed)
        assert cell.objects, "every object was removed"
        start = [pb.getBasePositionAndOrientation(u, physicsClientId=cell.client)[0]
                 for u in cell.objects]
        for _ in range(480):
            pb.stepSimulation(physicsClientId=cell.client)
        end = [pb.getBasePositionAndOrientation(u, physicsClientId=cell.client)[0]
               for u in cell.objects]
        assert np.abs(np.subtract(end, start)).max() < 0.01
        cell.restart()
        drop = cell.drop_test()  # the arm never reaches down: a failure, labeled so
        assert drop.ground_truth is False
        assert not detect_grasp_success(drop.before, drop.after).success
    finally:
        cell.close()


def test_config_rejects_a_settle_cap_below_the_settle_steps():
    with pytest.raises(ValueError, match="max_settle_steps 100"):
        SimCellConfig(settle_steps=240, max_settle_steps=100)


def _positions(cell: SimCell) -> np.ndarray:
    return np.array([pb.getBasePositionAndOrientation(u, physicsClientId=cell.client)[0]
                     for u in cell.objects])


def test_respawn_every_keeps_the_bin_for_k_episodes_then_rebuilds_from_the_seed():
    """The bin is re-drawn every K episodes; in between, only the arm restarts and the objects
    stay where the last episode left them (a grasped object dropped back in, as the paper's
    robots do)."""
    cfg = SimCellConfig(respawn_every=3, min_objects=3, max_objects=3)
    cell, fresh = SimCell(cfg), SimCell(cfg)
    try:
        cell.reset(40)
        ids, uids = list(cell.object_ids), list(cell.objects)
        for k, seed in enumerate((41, 42)):
            # Move an object by hand: a rebuild from the seed would put it back.
            pb.resetBasePositionAndOrientation(
                cell.objects[k], [TRAY_POSITION[0] + 0.05 * k, TRAY_POSITION[1], FLOOR_Z + 0.05],
                [0, 0, 0, 1], physicsClientId=cell.client)
            cell.settle()
            cell.execute(Action((0.03, 0.0, -0.05), 0.2, True, False))
            end = _positions(cell)
            observation = cell.reset(seed)
            assert (cell.object_ids, cell.objects) == (ids, uids)
            np.testing.assert_allclose(_positions(cell), end, atol=0.005)
            assert not observation.gripper_closed
            assert observation.height_to_bottom == pytest.approx(cfg.workspace.start_height,
                                                                 abs=0.01)
        rebuilt, expected = cell.reset(43), fresh.reset(43)
        assert cell.object_ids == fresh.object_ids != ids
        np.testing.assert_array_equal(_positions(cell), _positions(fresh))
        np.testing.assert_array_equal(rebuilt.image, expected.image)
    finally:
        cell.close()
        fresh.close()


def _run_scripted(cell: SimCell, seed: int, observation: Observation) -> None:
    """pi_scripted (App. B) from the episode's first observation to its stop."""
    policy = ScriptedGraspPolicy(ActionBounds(), seed=seed)
    for step in range(MAX_STEPS):
        action = policy.select_action(observation, step).action
        if action.terminate:
            return
        cell.execute(action)
        observation = cell.observe()


@pytest.mark.parametrize("seed, held", [(0, True), (17, False)])
def test_truth_label_is_the_held_object_check_and_drops_the_object_back(seed, held):
    """label='truth': the simulator's check after the lift instead of the drop test; the
    gripper then opens over the bin, so a grasped object falls back for the next episode."""
    cfg = SimCellConfig(label="truth", min_objects=4, max_objects=4)
    cell = SimCell(cfg)
    try:
        _run_scripted(cell, seed, cell.reset(seed))
        count = len(cell.objects)
        grasped = int(np.argmax(_positions(cell)[:, 2]))  # if one is held, it is the highest
        assert cell.label_grasp() == GraspLabel(held, held, None)
        assert not cell.gripper_closed and len(cell.objects) == count
        # Still over the bin at the lift height: none of the drop test's out-of-view motions.
        centre, half = np.array(TRAY_POSITION[:2]), np.array(cfg.workspace.half_extent)
        assert cell.target[2] == pytest.approx(cfg.drop_test.lift_height, abs=1e-6)
        assert np.all(np.abs(cell.target[:2] - centre) <= half + 1e-9)
        cell.settle()
        assert not cell.held_object_ground_truth()
        if held:  # back in the bin, not on the floor below the tray
            assert 0.0 < _positions(cell)[grasped, 2] - FLOOR_Z < cfg.success_height
    finally:
        cell.close()


def test_a_world_that_settles_to_an_empty_bin_is_drawn_again(monkeypatch):
    """Seed 300000's first draw on test objects (1-3 of them) leaves none at rest: every one is
    removed while settling, and an episode over an empty bin teaches nothing."""
    cfg = SimCellConfig(object_split="test", max_objects=3)
    builds = []
    build = SimCell._build_world

    def counting_build(self, seed, objects):
        build(self, seed, objects)
        builds.append((seed, len(self.objects)))

    monkeypatch.setattr(SimCell, "_build_world", counting_build)
    cell, again = SimCell(cfg), SimCell(cfg)
    try:
        cell.reset(300000)
        assert builds[0] == (300000, 0), "the seed no longer settles empty; pick another"
        assert len(builds) > 1 and builds[-1][1] == len(cell.objects) >= 1
        again.reset(300000)
        assert again.object_ids == cell.object_ids  # the redraw is a function of the seed
    finally:
        cell.close()
        again.close()


def test_config_rejects_bad_respawn_and_label_values():
    with pytest.raises(ValueError, match="respawn_every 0"):
        SimCellConfig(respawn_every=0)
    with pytest.raises(ValueError, match="'foo'"):
        SimCellConfig(label="foo")


@pytest.mark.parametrize("restart_settle", [True, False])
def test_kept_bin_loses_objects_that_left_the_tray_and_bin_emptying_worlds_are_not_kept(
        restart_settle):
    cfg = SimCellConfig(respawn_every=3, min_objects=3, max_objects=3,
                        restart_settle=restart_settle)
    cell, fresh = SimCell(cfg), SimCell(cfg)
    try:
        cell.reset(5)
        fallen = cell.object_ids[0]
        pb.resetBasePositionAndOrientation(cell.objects[0], [0.0, -0.6, -0.5], [0, 0, 0, 1],
                                           physicsClientId=cell.client)
        cell.reset(6)  # the same world, without the object on the ground
        assert fallen not in cell.object_ids and len(cell.object_ids) == 2
        cell.reset(7, objects=5)  # bin emptying: a fresh world of 5 ...
        cell.reset(8)  # ... that the next plain episode does not inherit
        fresh.reset(8)
        assert cell.object_ids == fresh.object_ids
    finally:
        cell.close()
        fresh.close()


@pytest.mark.parametrize("restart_settle", [True, False])
def test_a_kept_world_waits_for_a_falling_object_only_with_restart_settle(restart_settle):
    cell = SimCell(SimCellConfig(respawn_every=3, min_objects=3, max_objects=3,
                                 restart_settle=restart_settle))
    try:
        cell.reset(5)
        above = [TRAY_POSITION[0], TRAY_POSITION[1], FLOOR_Z + 0.2]  # dropped back, in the air
        pb.resetBasePositionAndOrientation(cell.objects[0], above, [0, 0, 0, 1],
                                           physicsClientId=cell.client)
        pb.resetBaseVelocity(cell.objects[0], [0, 0, -0.5], [0, 0, 0],
                             physicsClientId=cell.client)
        cell.reset(6)  # the same world
        height = pb.getBasePositionAndOrientation(cell.objects[0],
                                                  physicsClientId=cell.client)[0][2]
        if restart_settle:  # at rest in the bin when the episode starts
            assert height < FLOOR_Z + 0.1 and not cell._restless()
        else:  # still in the air (the arm's restart steps a little): it falls in the episode
            assert height > FLOOR_Z + 0.1
    finally:
        cell.close()


def test_a_seed_whose_worlds_all_settle_empty_is_an_error(monkeypatch):
    def drop_nothing(self, n):
        self.objects, self.object_ids = [], []

    monkeypatch.setattr(SimCell, "_drop_objects", drop_nothing)
    cell = SimCell(SimCellConfig())
    try:
        with pytest.raises(RuntimeError, match="seed 3: 10 worlds in a row settled to an empty"):
            cell.reset(3)
    finally:
        cell.close()
