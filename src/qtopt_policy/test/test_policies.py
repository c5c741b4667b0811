"""Policies of Sec. 4.2 / App. B behind one protocol."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from qtopt_policy.cem_actor import CEMActor
from qtopt_policy.policies import (
    EpsilonGreedyPolicy,
    ExplorationSwitch,
    GreedyCEMPolicy,
    NoiseConfig,
    Policy,
    ScriptedConfig,
    ScriptedGraspPolicy,
)
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import ACTION, MAX_STEPS, Action, ActionBounds, Observation

BOUNDS = ActionBounds()
TARGET = torch.tensor([0.02, -0.01, -0.04])


class PeakQ(nn.Module):
    """A known Q-function: highest at translation TARGET with the gripper closed."""

    def encode_state(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1)

    def score(self, features, low_dim, actions):
        d = ((ACTION.translation(actions) - TARGET) / 0.03).pow(2).sum(-1)
        return torch.exp(-d) * (0.5 + 0.5 * ACTION.gripper_close(actions))


def _obs(height=0.3, closed=False, size=64):
    return Observation(np.zeros((size, size, 3), np.uint8), closed, height)


def test_all_policies_satisfy_the_protocol():
    greedy = GreedyCEMPolicy(CEMActor(PeakQ(), BOUNDS), 64)
    for p in (greedy, EpsilonGreedyPolicy(greedy, BOUNDS), ScriptedGraspPolicy(BOUNDS)):
        assert isinstance(p, Policy)


def test_greedy_policy_finds_the_peak_of_a_known_q():
    policy = GreedyCEMPolicy(CEMActor(PeakQ(), BOUNDS), 64, seed=0)
    out = policy.select_action(_obs(), 0)
    assert out.action.gripper_close
    assert np.allclose(out.action.translation, TARGET.numpy(), atol=0.015)
    assert 0.6 < out.q_value <= 1.0
    out.action.validate(BOUNDS)


def test_greedy_policy_runs_the_real_network_and_is_seedable():
    torch.manual_seed(0)
    policy = GreedyCEMPolicy(CEMActor(QNetwork(PRESETS["sim"]).eval(), BOUNDS), 64)
    policy.reset(7)
    a = policy.select_action(_obs(), 0)
    policy.reset(7)
    b = policy.select_action(_obs(), 0)
    assert a == b
    assert 0.0 <= a.q_value <= 1.0


def test_greedy_policy_rejects_wrong_image_size():
    policy = GreedyCEMPolicy(CEMActor(PeakQ(), BOUNDS), 64)
    with pytest.raises(ValueError, match=r"\(32, 32\).*\(64, 64\)"):
        policy.select_action(_obs(size=32), 0)


class _ConstantGreedy:
    name = "greedy"

    def reset(self, seed):
        pass

    def select_action(self, observation, step):
        from qtopt_policy.policies import PolicyOutput

        return PolicyOutput(Action((0.0, 0.0, 0.0), 0.0, True, False), 0.5)


@pytest.mark.parametrize("toggle_moves", [True, False])
def test_noisy_policy_mixes_random_actions_as_appendix_b(toggle_moves):
    config = NoiseConfig(toggle_moves=toggle_moves)
    policy = EpsilonGreedyPolicy(_ConstantGreedy(), BOUNDS, config, seed=3)
    outs = [policy.select_action(_obs(closed=True), i) for i in range(20000)]
    random_actions = [o.action for o in outs if math.isnan(o.q_value)]
    assert abs(len(random_actions) / len(outs) - 0.2) < 0.01
    terminate = [a for a in random_actions if a.terminate]
    toggles = [a for a in random_actions if a.gripper_open]
    poses = [a for a in random_actions if a.gripper_close and not a.terminate]
    n = len(random_actions)
    assert abs(len(poses) / n - 0.75) < 0.02 and abs(len(toggles) / n - 0.17) < 0.02
    assert abs(len(terminate) / n - 0.08) < 0.015
    assert all(a.translation != (0.0, 0.0, 0.0) for a in poses)
    assert all((a.translation != (0.0, 0.0, 0.0)) == toggle_moves for a in toggles)
    assert all(a.translation == (0.0, 0.0, 0.0) and a.gripper_close for a in terminate)
    for a in random_actions:
        a.validate(BOUNDS)


def test_noise_config_must_be_a_distribution():
    with pytest.raises(ValueError, match="sum to 1.1"):
        NoiseConfig(pose_probability=0.85)


def _run_scripted(seed: int, start_height: float = 0.3):
    """Drive pi_scripted with an ideal arm that executes each height change exactly."""
    policy = ScriptedGraspPolicy(BOUNDS, seed=seed)
    height, closed, trace = start_height, False, []
    for step in range(MAX_STEPS):
        out = policy.select_action(_obs(height, closed), step)
        out.action.validate(BOUNDS)
        trace.append((height, out.action))
        height = max(0.0, height + out.action.translation[2])
        closed = out.action.gripper_close
        if out.action.terminate:
            break
    return trace


@pytest.mark.parametrize("seed", range(20))
def test_scripted_descends_open_closes_then_ascends_and_terminates(seed):
    trace = _run_scripted(seed)
    actions = [a for _, a in trace]
    close_at = next(i for i, a in enumerate(actions) if a.gripper_close)
    descent = actions[:close_at]
    assert 2 <= len(descent) <= 8  # "a few random descent steps", more when z is clipped
    assert all(a.translation[2] < 0 and a.gripper_open for a in descent)
    assert trace[close_at][0] <= ScriptedConfig().grasp_height + 0.01  # closed near the floor
    assert all(a.gripper_close and a.translation[2] >= 0 for a in actions[close_at:-1])
    assert actions[-1] == Action.stop() and trace[-1][0] >= 0.249  # lifted, then stops
    assert len(actions) <= MAX_STEPS


def test_scripted_targets_vary_and_repeat_with_the_seed():
    xy = [sum(np.array(a.translation[:2]) for _, a in _run_scripted(s)) for s in range(30)]
    assert np.std([p[0] for p in xy]) > 0.03
    assert all(np.all(np.abs(p) <= ScriptedConfig().xy_range + 1e-9) for p in xy)
    assert _run_scripted(5) == _run_scripted(5)


def test_exploration_switch_moves_to_learned_at_50_percent_and_stays():
    switch = ExplorationSwitch(threshold=0.5, window=10, min_episodes=10)
    scripted, learned = object(), object()
    for outcome in [True, False] * 4 + [False]:
        switch.record(outcome)
    assert switch.choose(scripted, learned) is scripted
    switch.record(True)  # 5 of the last 10
    assert switch.choose(scripted, learned) is learned
    for _ in range(10):
        switch.record(False)
    assert switch.choose(scripted, learned) is learned


def test_action_vector_round_trip_and_validation():
    a = Action((0.01, -0.02, 0.05), 0.3, True, False)
    assert Action.from_vector(a.to_vector()) == Action(
        tuple(float(np.float32(x)) for x in a.translation),
        float(math.atan2(np.float32(math.sin(0.3)), np.float32(math.cos(0.3)))), True, False)
    with pytest.raises(ValueError, match="0.09"):
        Action((0.09, 0.0, 0.0), 0.0, True, False).validate(BOUNDS)
    with pytest.raises(ValueError, match="rotation 1.0"):
        Action((0.0, 0.0, 0.0), 1.0, True, False).validate(BOUNDS)
    with pytest.raises(ValueError, match="nan"):
        Action.from_vector(np.full(8, np.nan))


def test_observation_validation_names_the_problem():
    with pytest.raises(ValueError, match="float64"):
        Observation(np.zeros((4, 4, 3)), False, 0.1).validate()
    with pytest.raises(ValueError, match="inf"):
        Observation(np.zeros((4, 4, 3), np.uint8), False, math.inf).validate()


def test_larger_frames_are_centre_cropped_for_the_network():
    from qtopt_policy.cem_actor import StateBatch

    frame = np.zeros((72, 80, 3), np.uint8)
    frame[4:68, 8:72] = 200  # the centre 64 x 64 square
    batch = StateBatch.from_observations([Observation(frame, False, 0.1)], 64)
    assert tuple(batch.images.shape) == (1, 64, 64, 3)
    assert int(batch.images.min()) == 200


@pytest.mark.parametrize("lift", [True, False])
def test_scripted_lifts_a_gripper_closed_during_the_descent(lift):
    """scripted_noisy's random close in the air is a grasp attempt that fails, not a step the
    scripted policy undoes (unless ``lift_after_any_close`` is off)."""
    policy = ScriptedGraspPolicy(BOUNDS, ScriptedConfig(lift_after_any_close=lift), seed=3)
    first = policy.select_action(_obs(0.3, False), 0).action
    assert first.gripper_open and first.translation[2] < 0
    after = policy.select_action(_obs(0.22, True), 1).action  # noise closed the gripper
    if lift:
        assert after.gripper_close and after.translation[2] > 0
    else:
        assert after.gripper_open and after.translation[2] < 0
