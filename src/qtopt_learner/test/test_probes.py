"""Probes of a trained Q-function: ROC AUC, Q(s, stop) on lifted states, the ranking of the
scripted action against alternatives."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from qtopt_learner.probes import (
    ALTERNATIVES,
    action_ranking,
    alternatives,
    lifted_states,
    outcome_auc,
    phase_of,
    q_against_alternatives,
    roc_auc,
    stop_value_auc,
)
from qtopt_policy.cem import CEMConfig
from qtopt_policy.episode_record import EpisodeRecord, StepRecord, Termination
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import Action, ActionBounds, Observation
from qtopt_policy.torchscript_model import ModelMetadata, export_model, load_model


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


def _model(tmp_path) -> str:
    torch.manual_seed(0)
    path = tmp_path / "q.pt"
    export_model(QNetwork(PRESETS["sim"]).eval(), path,
                 ModelMetadata("sim", PRESETS["sim"], ActionBounds(), CEMConfig()))
    return str(path)


def test_stop_value_auc_scores_the_model_on_lifted_states(tmp_path):
    path = _model(tmp_path)
    records = [_episode(k % 2 == 0, k % 2 == 0, [0.2], 40 * k) for k in range(6)]
    probe = stop_value_auc(path, records)
    assert probe.states == 12 and probe.successes == 6
    assert 0.0 <= probe.auc <= 1.0 and 0.0 < probe.q_success < 1.0
    assert "AUC" in probe.summary()
    empty = stop_value_auc(path, [_episode(True, True, [0.02], 0)][:0])
    assert empty.states == 0 and math.isnan(empty.auc)


DOWN = Action((0.0, 0.0, -0.05), 0.0, False, False)
CLOSE = Action((0.0, 0.0, 0.0), 0.0, True, False)
UP_CLOSED = Action((0.0, 0.0, 0.05), 0.0, True, False)


def test_phase_of_a_scripted_state():
    assert phase_of(_obs(0, False, 0.25), DOWN) == "descent"
    assert phase_of(_obs(0, False, 0.02), CLOSE) == "close"
    assert phase_of(_obs(0, True, 0.2), UP_CLOSED) == "lift"
    assert phase_of(_obs(0, False, 0.05), DOWN) is None  # low, not closing yet
    assert phase_of(_obs(0, True, 0.05), UP_CLOSED) == "lift"  # the lift from the floor
    assert phase_of(_obs(0, True, 0.2), Action((0, 0, -0.05), 0, True, False)) is None


def test_alternatives_close_open_then_full_descent_and_ascent_keeping_the_gripper():
    z = float(ActionBounds().translation_limits()[2])
    close, open_, down, up = alternatives(_obs(0, True, 0.2))
    assert len(ALTERNATIVES) == 4
    assert close.gripper_close and not open_.gripper_close
    assert close.translation == open_.translation == (0.0, 0.0, 0.0)
    assert down.translation == (0.0, 0.0, -z) and up.translation == (0.0, 0.0, z)
    assert down.gripper_close and up.gripper_close  # the observed gripper is closed
    assert not alternatives(_obs(0, False, 0.2))[2].gripper_close


def _scripted_like(brightness: int, success: bool = True) -> EpisodeRecord:
    """Descend open from 0.3 m, close at the floor, lift closed."""
    moves = [(0.30, False, DOWN), (0.20, False, DOWN), (0.02, False, CLOSE),
             (0.02, True, UP_CLOSED), (0.18, True, UP_CLOSED)]
    last = len(moves) - 1
    steps = [StepRecord(_obs(brightness, closed, h), a, float(i == last), i == last, math.nan)
             for i, (h, closed, a) in enumerate(moves)]
    return EpisodeRecord("e", "cell0", "scripted", 0, Termination.SCRIPTED, steps,
                         _obs(brightness, True, 0.25), success, success, [], 0)


def test_action_ranking_scores_each_phase_against_the_alternatives(tmp_path):
    path = _model(tmp_path)
    rows = {r.phase: r for r in action_ranking(path, [_scripted_like(30), _scripted_like(90)])}
    assert set(rows) == {"descent", "close", "lift"}
    assert (rows["descent"].states, rows["close"].states, rows["lift"].states) == (4, 2, 4)
    close = rows["close"]
    # The scripted close is the "close here" alternative: the same Q, so never beaten by it.
    assert close.q_scripted == close.q_alternatives[0] and len(close.q_alternatives) == 4
    assert all(0.0 < q < 1.0 for r in rows.values() for q in (r.q_scripted, *r.q_alternatives))
    assert 0.0 <= rows["descent"].scripted_best <= 1.0
    assert rows["close"].row().startswith("| close | 2 |")
    # the discounted return of the scripted action: reward 1 at step 4, gamma 0.9
    assert rows["descent"].return_scripted == pytest.approx((0.9 ** 4 + 0.9 ** 3) / 2)
    assert rows["close"].return_scripted == pytest.approx(0.81)
    assert rows["lift"].return_scripted == pytest.approx((0.9 + 1.0) / 2)
    assert math.isnan(rows["lift"].auc)  # every grasp held: no ranking to score
    mixed = {r.phase: r for r in action_ranking(path, [_scripted_like(30, success=False),
                                                        _scripted_like(90)])}
    assert 0.0 <= mixed["close"].auc <= 1.0 and 0.0 <= mixed["lift"].auc <= 1.0


def test_q_against_alternatives_scores_the_given_action_first(tmp_path):
    loaded = load_model(_model(tmp_path))
    observation = _obs(50, False, 0.25)
    down = alternatives(observation)[2]
    q = q_against_alternatives(loaded, [observation, observation], [down, CLOSE])
    assert q.shape == (2, 5)
    assert q[0, 0] == q[0, 3]  # the full descent given, the full descent alternative
    assert q[1, 0] == q[1, 1]  # close in place given, close in place alternative
    np.testing.assert_allclose(q[0, 1:], q[1, 1:], atol=1e-6)  # same state, alternatives


def test_outcome_auc_scores_the_taken_close_and_last_transition(tmp_path):
    path = _model(tmp_path)
    records = [_scripted_like(30 * k, success=k % 2 == 0) for k in range(1, 7)]
    probe = outcome_auc(path, records)
    assert probe.episodes == 6
    assert 0.0 <= probe.close <= 1.0 and 0.0 <= probe.last <= 1.0
    # The same close and last transition in every episode: only the image tells them apart,
    # and flipping every label mirrors the ranking.
    flipped = [dataclasses.replace(r, success=not r.success, ground_truth=not r.ground_truth)
               for r in records]
    mirrored = outcome_auc(path, flipped)
    assert mirrored.close == pytest.approx(1.0 - probe.close)
    assert mirrored.last == pytest.approx(1.0 - probe.last)
    assert math.isnan(outcome_auc(path, records[:1]).last)  # one outcome: nothing to rank
    assert "last-transition AUC" in probe.summary()
