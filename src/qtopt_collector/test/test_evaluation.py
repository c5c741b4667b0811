"""Evaluation protocols (Sec. 6.1): grasps with replacement and bin emptying, interval maths,
real sim runs, and the camera check that keeps a model to the view it was trained on."""

import dataclasses
import re

import numpy as np
import pybullet as pb
import pytest
import torch

from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.evaluation import (
    BinEmptyingResult,
    bin_emptying,
    check_camera,
    evaluate,
    scripted_episodes,
    wilson_interval,
)
from qtopt_collector.sim_cell import FLOOR_Z, TIP_LINKS, TRAY_POSITION, SimCell, SimCellConfig
from qtopt_policy.cem import CEMConfig
from qtopt_policy.policies import GreedyCEMPolicy, PolicySource, ScriptedGraspPolicy
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import ModelMetadata, export_model


def test_wilson_interval_by_hand():
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


SCRIPTED = PolicySource(local="scripted")


def test_policy_sources_and_a_short_evaluation_on_test_objects(tmp_path):
    torch.manual_seed(0)
    net = QNetwork(PRESETS["sim"]).eval()
    export_model(net, tmp_path / "q.pt", ModelMetadata("sim", PRESETS["sim"], ActionBounds(),
                                                       CEMConfig(), 1, 1))
    model = PolicySource.parse(str(tmp_path / "q.pt"))
    assert model.model_path and isinstance(model.make(), GreedyCEMPolicy)
    assert PolicySource.parse("scripted") == SCRIPTED
    assert isinstance(SCRIPTED.make(), ScriptedGraspPolicy)
    with pytest.raises(ValueError, match="expected exactly one of them"):
        PolicySource(local="scripted", model_path="q.pt")
    with pytest.raises(ValueError, match="policy 'greedy': expected one of"):
        PolicySource(local="greedy")
    result = evaluate(SCRIPTED, 3, seed=5, progress=False)
    assert result.attempts == 3 and 0 <= result.successes <= 3 and result.mean_steps >= 2
    assert result.policy == "scripted"
    again = evaluate(SCRIPTED, 3, seed=5, progress=False)
    assert (again.successes, again.mean_steps) == (result.successes, result.mean_steps)
    assert "95 % CI" in result.summary()
    # a Policy object runs in this process, the same episodes as the source builds
    same = evaluate(SCRIPTED.make(seed=5), 3, seed=5, progress=False)
    assert (same.successes, same.mean_steps) == (result.successes, result.mean_steps)
    with pytest.raises(ValueError, match="workers 2 with a Policy object"):
        evaluate(SCRIPTED.make(), 2, workers=2, progress=False)


def test_scripted_episodes_close_then_lift_with_their_own_seeds():
    records = scripted_episodes(SimCellConfig(), EpisodeConfig(scripted_termination=True), 2)
    assert [r.seed for r in records] == [400_000, 400_001]
    for record in records:
        assert record.policy_name == "scripted"
        closes = [i for i, s in enumerate(record.steps) if s.action.gripper_close]
        assert closes and all(s.action.translation[2] >= 0 for s in record.steps[closes[0]:])


def test_bin_emptying_takes_grasped_objects_out_and_never_refills(tmp_path):
    cell = SimCell(SimCellConfig(object_split="test"))
    try:
        cell.reset(7, objects=12)  # more than one drop layer
        assert len(cell.objects) == 12
        in_tray = [pb.getBasePositionAndOrientation(u, physicsClientId=cell.client)[0]
                   for u in cell.objects]
        assert all(abs(x - TRAY_POSITION[0]) < 0.3 and abs(y - TRAY_POSITION[1]) < 0.3
                   for x, y, _ in in_tray)
        # weightless for the set-up: object 4 between the open fingertips, object 5 floating
        # high above the bin (like one resting on a pile) without touching the gripper
        c = cell.client
        pb.setGravity(0, 0, 0, physicsClientId=c)
        tips = np.mean([np.mean(pb.getAABB(cell.robot, link, physicsClientId=c), axis=0)
                        for link in TIP_LINKS], axis=0)
        pb.resetBasePositionAndOrientation(cell.objects[4], tips.tolist(), [0, 0, 0, 1],
                                           physicsClientId=c)
        pb.resetBasePositionAndOrientation(cell.objects[5], [TRAY_POSITION[0] - 0.1,
                                           TRAY_POSITION[1] - 0.1, FLOOR_Z + 0.3],
                                           [0, 0, 0, 1], physicsClientId=c)
        cell.set_gripper(True)
        lifted = cell.object_ids[4]
        assert cell.held_object_ground_truth()
        assert cell.remove_held_objects() == [lifted]
        assert len(cell.objects) == 11 and lifted not in cell.object_ids
        assert cell.remove_held_objects() == []
        start = cell.restart()  # a new attempt in the same bin
        assert len(cell.objects) == 11 and start.height_to_bottom == pytest.approx(0.30, abs=0.01)
        with pytest.raises(ValueError, match="objects 31"):
            cell.reset(7, objects=31)
    finally:
        cell.close()

    result = bin_emptying(SCRIPTED, objects=2, attempts=4, seed=11, progress=False)
    assert len(result.outcomes) == 1 and len(result.outcomes[0]) == 4
    assert sum(result.outcomes[0]) <= 2  # without replacement: at most the bin's objects
    again = bin_emptying(SCRIPTED, objects=2, attempts=4, seed=11, progress=False)
    assert again.outcomes == result.outcomes


def test_bin_emptying_rates_over_the_first_attempts():
    result = BinEmptyingResult("p", 28, ((True, False) * 15, (True,) * 30))
    assert result.checkpoints == [10, 20, 30]
    assert result.rate_first(10) == pytest.approx((5 + 10) / 20)
    assert "first 30: 75%" in result.summary()
    assert BinEmptyingResult("p", 3, ((True, False, False),)).checkpoints == [3]


def test_evaluation_refuses_a_model_trained_with_another_camera(tmp_path):
    torch.manual_seed(0)
    cell_a, cell_b = SimCellConfig(), SimCellConfig(camera_fov_deg=60.0)
    meta = ModelMetadata("sim", PRESETS["sim"], ActionBounds(), CEMConfig(), 1, 1,
                         camera=cell_a.camera(), label_source="truth")
    path = str(tmp_path / "q.pt")
    export_model(QNetwork(PRESETS["sim"]).eval(), path, meta)
    model = PolicySource(model_path=path)
    message = (f"model {path} was trained with camera {cell_a.camera().describe()} but the "
               f"cell's camera is {cell_b.camera().describe()}: expected the same camera")
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate(model, 1, cell_config=cell_b, progress=False)
    with pytest.raises(ValueError, match="fov_deg 48.*fov_deg 60"):
        bin_emptying(model, objects=1, attempts=1, cell_config=cell_b, progress=False)
    assert evaluate(model, 1, cell_config=cell_a, progress=False).attempts == 1
    # a model from before cameras were recorded is evaluated in any cell
    old = str(tmp_path / "old.pt")
    export_model(QNetwork(PRESETS["sim"]).eval(), old, dataclasses.replace(meta, camera=None))
    check_camera(PolicySource(model_path=old), cell_b)
