"""Algorithm 1 with learned and scripted termination, rewards of Sec. 5."""

import math

import pytest

from qtopt_collector.episode import (
    EpisodeConfig,
    relabel_rewards,
    run_episode,
    scripted_termination,
    step_rewards,
)
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_policy.episode_record import Termination
from qtopt_policy.policies import PolicyOutput, ScriptedGraspPolicy
from qtopt_policy.spec import Action, ActionBounds, Observation


@pytest.fixture(scope="module")
def cell():
    c = SimCell(SimCellConfig(min_objects=3, max_objects=5))
    yield c
    c.close()


def test_rewards_follow_section_5():
    cfg = EpisodeConfig()
    assert step_rewards(4, True, 0.25, cfg) == [-0.05, -0.05, -0.05, 1.0]
    assert step_rewards(3, False, 0.25, cfg) == [-0.05, -0.05, 0.0]
    assert step_rewards(2, True, 0.25, EpisodeConfig(step_penalty=0.0)) == [0.0, 1.0]


def test_success_earns_the_reward_only_above_the_termination_height():
    """App. D.4: with learned termination the reward needs the gripper lifted at the end."""
    cfg = EpisodeConfig()
    assert cfg.success_min_height == pytest.approx(0.13)
    assert step_rewards(3, True, 0.12, cfg) == [-0.05, -0.05, 0.0]
    assert step_rewards(3, True, 0.14, cfg) == [-0.05, -0.05, 1.0]
    assert step_rewards(1, True, 0.01, EpisodeConfig(success_min_height=0.0)) == [1.0]


def test_scripted_termination_is_algorithm_2():
    import numpy as np

    img = np.zeros((4, 4, 3), np.uint8)
    up = Action((0.0, 0.0, 0.02), 0.0, True, False)
    assert scripted_termination(Observation(img, True, 0.14), up)
    assert not scripted_termination(Observation(img, True, 0.12), up)
    assert not scripted_termination(Observation(img, False, 0.2), up)
    assert not scripted_termination(Observation(img, True, 0.2),
                                    Action((0.0, 0.0, -0.01), 0.0, True, False))


def test_scripted_policy_episode_with_learned_termination(cell):
    ep = run_episode(cell, ScriptedGraspPolicy(ActionBounds()), seed=4, cell_id="c7")
    assert ep.termination is Termination.LEARNED and ep.steps[-1].action.terminate
    assert 3 <= len(ep.steps) <= 20
    assert [s.done for s in ep.steps] == [False] * (len(ep.steps) - 1) + [True]
    assert ep.total_reward == pytest.approx(-0.05 * (len(ep.steps) - 1) + float(ep.success))
    assert ep.episode_id == "c7-4" and ep.policy_name == "scripted"
    assert ep.ground_truth is not None and len(ep.object_ids) >= 3
    assert all(math.isnan(s.q_value) for s in ep.steps)


def test_scripted_termination_ends_earlier_while_ascending(cell):
    ep = run_episode(cell, ScriptedGraspPolicy(ActionBounds()), seed=4,
                     config=EpisodeConfig(scripted_termination=True))
    learned = run_episode(cell, ScriptedGraspPolicy(ActionBounds()), seed=4)
    assert ep.termination is Termination.SCRIPTED
    assert len(ep.steps) < len(learned.steps)
    assert ep.final_observation.height_to_bottom > 0.13
    assert ep.steps[-1].observation.height_to_bottom < 0.13  # decided on the lift past 0.13 m
    # Algorithm 2 reading the action's start state: one lift later, from a lifted gripper
    on_state = run_episode(cell, ScriptedGraspPolicy(ActionBounds()), seed=4,
                           config=EpisodeConfig(scripted_termination=True,
                                                scripted_termination_height="state"))
    assert on_state.termination is Termination.SCRIPTED
    assert len(on_state.steps) == len(ep.steps) + 1
    assert on_state.steps[-1].observation.height_to_bottom > 0.13
    assert on_state.steps[-1].observation.gripper_closed
    with pytest.raises(ValueError, match="scripted_termination_height 'after'"):
        EpisodeConfig(scripted_termination_height="after")


class Hover:
    name = "hover"

    def reset(self, seed):
        pass

    def select_action(self, observation, step):
        return PolicyOutput(Action((0.0, 0.0, 0.01), 0.0, False, False), 0.5)


def test_step_limit_ends_the_episode(cell):
    ep = run_episode(cell, Hover(), seed=1, config=EpisodeConfig(max_steps=3))
    assert ep.termination is Termination.MAX_STEPS and len(ep.steps) == 3
    assert not ep.success and ep.steps[-1].reward == 0.0
    assert [s.q_value for s in ep.steps] == [0.5] * 3


class StopAfterMove:
    """Asks to move down and terminate in the same action."""

    name = "stop"

    def reset(self, seed):
        pass

    def select_action(self, observation, step):
        return PolicyOutput(Action((0.0, 0.0, -0.08), 0.0, True, True), 0.1)


def test_a_learned_termination_is_not_executed(cell):
    ep = run_episode(cell, StopAfterMove(), seed=2)
    start = ep.steps[0].observation
    assert ep.termination is Termination.LEARNED and len(ep.steps) == 1
    assert ep.final_observation.height_to_bottom == pytest.approx(start.height_to_bottom,
                                                                  abs=1e-3)
    assert not ep.final_observation.gripper_closed
    # Algorithm 2 ignores the e bit: the same action is executed and the episode goes on.
    scripted = run_episode(cell, StopAfterMove(), seed=2,
                           config=EpisodeConfig(scripted_termination=True, max_steps=2))
    assert scripted.termination is Termination.MAX_STEPS
    assert scripted.final_observation.height_to_bottom < start.height_to_bottom - 0.1


class OpenStop(StopAfterMove):
    """Asks to terminate with the gripper open."""

    def select_action(self, observation, step):
        return PolicyOutput(Action((0.0, 0.0, -0.01), 0.0, False, True), 0.1)


def test_the_close_ends_the_episode_under_the_grasp_trigger(cell):
    """The close as the grasp attempt: the step that closes an open gripper is the last; the
    label's own lift stands in for App. D.4's height condition; the e bit is ignored."""
    config = EpisodeConfig.ending_by("close", step_penalty=0.0)
    assert config.scripted_termination and config.close_ends_episode
    found = {True: None, False: None}
    for seed in range(4, 40):
        ep = run_episode(cell, ScriptedGraspPolicy(ActionBounds()), seed=seed, config=config)
        assert ep.termination is Termination.SCRIPTED
        assert ep.steps[-1].action.gripper_close
        assert not any(s.observation.gripper_closed for s in ep.steps)
        assert ep.final_observation.height_to_bottom < 0.13  # ended at the close, not lifted
        assert [s.reward for s in ep.steps] == [0.0] * (len(ep.steps) - 1) + [float(ep.success)]
        found[ep.success] = found[ep.success] or ep
        if all(found.values()):
            break
    assert all(found.values()), "expected both a held and a missed grasp in 36 seeds"
    # the discount ablation's relabeling keeps the success the label gave the close
    assert relabel_rewards(found[True], -0.05).steps[-1].reward == 1.0
    open_stop = run_episode(cell, OpenStop(), seed=2,
                            config=EpisodeConfig.ending_by("close", max_steps=2))
    assert open_stop.termination is Termination.MAX_STEPS and len(open_stop.steps) == 2
    with pytest.raises(ValueError, match="termination 'grasp'"):
        EpisodeConfig.ending_by("grasp")
    assert not EpisodeConfig.ending_by("learned").scripted_termination
    assert not EpisodeConfig.ending_by("scripted").close_ends_episode
