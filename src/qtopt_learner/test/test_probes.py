"""Probes of a trained Q-function: ROC AUC and Q(s, stop) on lifted states."""

import math

import numpy as np
import torch

from qtopt_learner.probes import lifted_states, roc_auc, stop_value_auc
from qtopt_policy.cem import CEMConfig
from qtopt_policy.episode_record import EpisodeRecord, StepRecord, Termination
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import Action, ActionBounds, Observation
from qtopt_policy.torchscript_model import ModelMetadata, export_model


def test_roc_auc_by_hand():
    assert roc_auc(np.array([0.9, 0.8, 0.1]), np.array([1, 1, 0])) == 1.0
    assert roc_auc(np.array([0.1, 0.8, 0.9]), np.array([1, 1, 0])) == 0.0
    # positives 0.5, 0.3 against negatives 0.4, 0.3: (1 + 0 + 0.5 (tie) + 1) / 4
    assert roc_auc(np.array([0.5, 0.3, 0.4, 0.3]), np.array([1, 1, 0, 0])) == 0.625
    assert math.isnan(roc_auc(np.array([0.5]), np.array([1])))


def _obs(brightness: int, closed: bool, height: float) -> Observation:
    return Observation(np.full((72, 72, 3), brightness, np.uint8), closed, height)


def _episode(success: bool, truth: bool | None, heights: list[float],
             brightness: int) -> EpisodeRecord:
    steps = [StepRecord(_obs(brightness, h > 0.1, h), Action((0, 0, 0.05), 0, True, False),
                        0.0, i == len(heights) - 1, math.nan) for i, h in enumerate(heights)]
    return EpisodeRecord("e", "cell0", "scripted", 0, Termination.MAX_STEPS, steps,
                         _obs(brightness, True, 0.25), success, truth, [], 0)


def test_lifted_states_take_closed_gripper_states_above_the_height_with_the_truth():
    records = [_episode(True, False, [0.02, 0.15, 0.2], 10),  # label says yes, truth says no
               _episode(False, None, [0.02, 0.05], 20)]  # no truth: the label counts
    observations, labels = lifted_states(records)
    assert [o.height_to_bottom for o in observations] == [0.15, 0.2, 0.25, 0.25]
    assert labels.tolist() == [False, False, False, False]
    assert lifted_states([_episode(True, True, [0.3], 0)])[1].tolist() == [True, True]


def test_stop_value_auc_scores_the_model_on_lifted_states(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "q.pt"
    export_model(QNetwork(PRESETS["sim"]).eval(), path,
                 ModelMetadata("sim", PRESETS["sim"], ActionBounds(), CEMConfig()))
    records = [_episode(k % 2 == 0, k % 2 == 0, [0.2], 40 * k) for k in range(6)]
    probe = stop_value_auc(str(path), records)
    assert probe.states == 12 and probe.successes == 6
    assert 0.0 <= probe.auc <= 1.0 and 0.0 < probe.q_success < 1.0
    assert "AUC" in probe.summary()
    empty = stop_value_auc(str(path), [_episode(True, True, [0.02], 0)][:0])
    assert empty.states == 0 and math.isnan(empty.auc)
