"""Evaluation protocol 1 (grasps with replacement): interval maths and a real sim run."""

import pytest
import torch

from qtopt_learner.evaluation import evaluate, make_policy, wilson_interval
from qtopt_policy.cem import CEMConfig
from qtopt_policy.policies import GreedyCEMPolicy, ScriptedGraspPolicy
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import ModelMetadata, export_model


def test_wilson_interval_by_hand():
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_make_policy_and_a_short_evaluation_on_test_objects(tmp_path):
    torch.manual_seed(0)
    net = QNetwork(PRESETS["sim"]).eval()
    export_model(net, tmp_path / "q.pt", ModelMetadata("sim", PRESETS["sim"], ActionBounds(),
                                                       CEMConfig(), 1, 1))
    assert isinstance(make_policy(str(tmp_path / "q.pt")), GreedyCEMPolicy)
    assert isinstance(make_policy("scripted"), ScriptedGraspPolicy)
    result = evaluate("scripted", 3, seed=5, progress=False)
    assert result.attempts == 3 and 0 <= result.successes <= 3 and result.mean_steps >= 2
    again = evaluate("scripted", 3, seed=5, progress=False)
    assert (again.successes, again.mean_steps) == (result.successes, result.mean_steps)
    assert "95 % CI" in result.summary()
