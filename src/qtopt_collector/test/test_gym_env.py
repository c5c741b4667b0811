"""The sim cell as a Gymnasium environment: Gymnasium's checker, registration, seeded resets,
episodes equal to the episode loop's (rewards of Sec. 5 / App. D.4) and clear errors."""

import math
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from qtopt_collector.episode import EpisodeConfig, run_episode
from qtopt_collector.grasp_env import (
    GraspEnv,
    GraspEnvConfig,
    action_dict,
    action_space,
    to_observation,
)
from qtopt_collector.gym_env import ENV_ID
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_policy.episode_record import Termination
from qtopt_policy.policies import ScriptedGraspPolicy
from qtopt_policy.spec import LOW_DIM_STATE, STATE_FIELDS, Action, ActionBounds

# A cheap cell: small frames, few objects, the simulator's label without the drop test.
FAST = GraspEnvConfig(SimCellConfig(object_split="test", label="truth", substeps=20,
                                    max_objects=2, camera_width=32, camera_height=32))
# The action space keeps the spec's units (m, sin/cos), which Gymnasium only recommends against.
NOT_NORMALIZED = "we recommend using a symmetric and normalized space"


@pytest.fixture(scope="module")
def env():
    e = GraspEnv(FAST)
    yield e
    e.close()


def _stay(terminate: bool = False) -> dict:
    return action_dict(Action((0.0, 0.0, 0.0), 0.0, False, terminate))


def test_registering_loads_neither_the_simulator_nor_torch():
    code = ("import sys, gymnasium, qtopt_collector.gym_env as g\n"
            "assert gymnasium.spec(g.ENV_ID).entry_point == 'qtopt_collector.grasp_env:GraspEnv'\n"
            "sys.exit(3 if {'pybullet', 'torch'} & set(sys.modules) else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_gymnasium_check_env_passes():
    made = gymnasium.make(ENV_ID, config=FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(made.unwrapped)  # also makes it with render_mode="rgb_array" from its spec
    made.close()
    assert [str(w.message) for w in caught if NOT_NORMALIZED not in str(w.message)] == []


def test_make_by_module_name_and_render():
    made = gymnasium.make(f"qtopt_collector.gym_env:{ENV_ID}", config=FAST,
                          render_mode="rgb_array")
    observation, info = made.reset(seed=3)
    frame = made.render()
    assert frame.dtype == np.uint8 and frame.shape == (32, 32, 3)
    np.testing.assert_array_equal(frame, observation["image"])
    assert info["seed"] == 3 and 1 <= len(info["object_ids"]) <= 2
    made.close()
    with pytest.raises(ValueError, match="render_mode 'human': expected None or one of"):
        GraspEnv(FAST, render_mode="human")


def test_spaces_follow_the_spec(env):
    assert set(env.observation_space.spaces) == {f.name for f in STATE_FIELDS}
    assert env.observation_space["image"].shape == (32, 32, 3)
    limits = ActionBounds().translation_limits()
    np.testing.assert_array_equal(env.action_space["world_vector"].high, limits)
    # Every (sin, cos) of the box is a turn within max_rotation: its worst corner is max.
    rotation = env.action_space["vertical_rotation"]
    low, high = rotation.low, rotation.high
    assert math.atan2(high[0], low[1]) == pytest.approx(ActionBounds().max_rotation)
    with pytest.raises(ValueError, match="max_rotation 2.0: expected below pi/2"):
        action_space(ActionBounds(max_rotation=2.0))


def test_seeded_resets_build_the_same_bin(env):
    first, info_a = env.reset(seed=11)
    again, info_b = env.reset(seed=11)
    other, _ = env.reset(seed=12)
    np.testing.assert_array_equal(first["image"], again["image"])
    assert info_a == info_b
    assert not np.array_equal(first["image"], other["image"])
    # Unseeded resets continue the seeded generator's sequence.
    env.reset(seed=5)
    a, _ = env.reset()
    env.reset(seed=5)
    b, _ = env.reset()
    np.testing.assert_array_equal(a["image"], b["image"])
    with pytest.raises(ValueError, match=r"reset options \['shuffle'\]: expected only"):
        env.reset(options={"shuffle": True})
    assert env.reset(seed=1, options={"objects": 1})[1]["object_ids"].__len__() == 1


def _scripted_episode(env: GraspEnv, seed: int) -> tuple[list[float], dict, dict]:
    policy = ScriptedGraspPolicy(ActionBounds(), seed=seed)
    observation, _ = env.reset(seed=seed)
    rewards = []
    for step in range(env.config.episode.max_steps):
        output = policy.select_action(to_observation(observation), step)
        observation, reward, terminated, truncated, info = env.step(action_dict(output.action))
        assert observation in env.observation_space
        rewards.append(reward)
        if terminated or truncated:
            return rewards, observation, info
    raise AssertionError("the episode did not end at max_steps")


@pytest.mark.parametrize("episode", [
    EpisodeConfig(), EpisodeConfig(scripted_termination=True, scripted_termination_height="state"),
], ids=["learned", "scripted"])
def test_a_scripted_episode_is_the_episode_loops_with_its_rewards(episode):
    """Through the environment, the scripted policy's episodes equal run_episode's with the
    same seed, and the rewards are App. D.4's: -0.05 per step before the last, +1 at the end of
    a successful grasp; under learned termination and Algorithm 2 alike."""
    env = GraspEnv(GraspEnvConfig(FAST.cell, episode))
    successes = 0
    for seed in range(4):
        rewards, observation, info = _scripted_episode(env, seed)
        cell = SimCell(FAST.cell)
        record = run_episode(cell, ScriptedGraspPolicy(ActionBounds()), seed, episode)
        cell.close()
        assert rewards == [s.reward for s in record.steps]
        assert info == {"is_success": record.success, "ground_truth": record.ground_truth,
                        "termination": record.termination}
        assert to_observation(observation).height_to_bottom == pytest.approx(
            record.final_observation.height_to_bottom)
        assert sum(rewards) == pytest.approx(-0.05 * (len(rewards) - 1) + info["is_success"])
        successes += info["is_success"]
    env.close()
    assert successes >= 1  # the +1 branch ran (seed 2 succeeds)


def test_terminate_ends_the_episode_and_the_step_limit_truncates_it():
    limited = GraspEnv(GraspEnvConfig(FAST.cell, EpisodeConfig(max_steps=3)))
    limited.reset(seed=0)
    assert limited.step(_stay())[1:] == (-0.05, False, False, {})
    observation, reward, terminated, truncated, info = limited.step(_stay(terminate=True))
    assert (reward, terminated, truncated) == (0.0, True, False)  # nothing held
    assert info == {"is_success": False, "ground_truth": False,
                    "termination": Termination.LEARNED}
    with pytest.raises(RuntimeError, match="expected reset"):
        limited.step(_stay())
    limited.reset(seed=0)
    results = [limited.step(_stay()) for _ in range(3)]
    assert [r[1:4] for r in results] == [(-0.05, False, False)] * 2 + [(0.0, False, True)]
    assert results[-1][4]["termination"] is Termination.MAX_STEPS
    limited.close()


@pytest.mark.parametrize(("change", "message"), [
    ({"world_vector": [0.2, 0.0, 0.0]},
     r"action world_vector \(0.2, 0, 0\): expected 3 values in \[\(-0.05, -0.05, -0.08\)"),
    ({"world_vector": [math.nan, 0.0, 0.0]}, r"action world_vector \(nan, 0, 0\)"),
    ({"world_vector": [0.0, 0.0]}, r"action world_vector \(0, 0\): expected 3 values"),
    ({"world_vector": "up"}, r"action world_vector 'up': expected 3 values"),
    ({"vertical_rotation": [1.0, 0.0]}, r"action vertical_rotation \(1, 0\): expected 2 values"),
    ({"gripper_close": 2}, "action gripper_close 2: expected an integer 0 or 1"),
    ({"terminate": 0.5}, "action terminate 0.5: expected an integer 0 or 1"),
    ({"gripper": 1}, r"action \['gripper', 'gripper_close', .*\]: expected a dict with keys"),
])
def test_an_action_outside_the_space_is_refused_by_name(env, change, message):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step({**_stay(), **change})
    with pytest.raises(ValueError, match=r"action list: expected a dict with keys"):
        env.step([0.0] * 8)


def test_observations_convert_through_the_spec_codec(env):
    observation, _ = env.reset(seed=4)
    state = to_observation(observation)
    assert state.gripper_closed is False and state.height_to_bottom == pytest.approx(0.3, abs=0.01)
    np.testing.assert_array_equal(
        LOW_DIM_STATE.encode_from(state),
        np.concatenate([observation[f.name] for f in LOW_DIM_STATE.fields]))
