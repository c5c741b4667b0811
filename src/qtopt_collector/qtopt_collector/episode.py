"""The grasping control loop of Algorithm 1 as plain code (Kalashnikov et al. 2018, App. D.4).

capture state -> policy.SelectAction -> execute -> terminate? -> reward -> emit (s, a, r).
Termination is the policy's learned ``e`` bit, or the scripted rule of Algorithm 2 (gripper
closed, height above 0.13 m, commanded upward). A learned termination ends the episode in the
state it was chosen in: the rest of that action is not executed, so Q(s, terminate) depends on
the state alone (docs/decisions.md). After the last step the cell lifts, runs the drop
test and the success detector labels the episode; rewards follow Sec. 5, with App. D.4's
condition for learned termination: the success reward needs the episode to end with the gripper
above a height, so the policy learns to lift before it terminates. The same loop runs in
process against :class:`~qtopt_collector.sim_cell.SimCell` and in the episode runner node
against the cell's ROS interfaces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from qtopt_collector.success_detection import SuccessResult
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.episode_record import EpisodeRecord, StepRecord, Termination
from qtopt_policy.names import TERMINATIONS
from qtopt_policy.policies import Policy
from qtopt_policy.spec import MAX_STEPS, STEP_PENALTY, SUCCESS_REWARD, Action, Observation

SCRIPTED_TERMINATION_HEIGHT = 0.13  # m, Algorithm 2
TERMINATION_HEIGHTS = ("next", "state")  # EpisodeConfig.scripted_termination_height


@dataclass(frozen=True)
class GraspLabel:
    """The cell's verdict on an episode: image subtraction and, in simulation, the truth."""

    success: bool
    ground_truth: bool | None
    detection: SuccessResult | None = None


class Cell(Protocol):
    """What the episode loop needs from a grasping cell (sim or real)."""

    object_ids: list[str]

    def reset(self, seed: int) -> Observation: ...

    def execute(self, action: Action) -> None: ...

    def observe(self) -> Observation: ...

    def label_grasp(self) -> GraspLabel:
        """Lift, drop test and image subtraction (App. D.3) after the last step."""
        ...


@dataclass(frozen=True)
class EpisodeConfig:
    max_steps: int = bounded(MAX_STEPS, ge=1, le=1000)  # Sec. 5: at most 20 steps
    scripted_termination: bool = False  # Algorithm 2 instead of the learned e bit
    # Which height Algorithm 2 reads: the state the upward action starts from ("state"), so the
    # episode's last transition starts from a lifted gripper, or the state it leads to ("next"),
    # which ends the episode one lift earlier (docs/decisions.md).
    scripted_termination_height: str = "next"
    # A lever of issue 15 beside the paper's MDP, like Quillen et al. (2018)'s auto-grasp but
    # triggered by the policy's close rather than by height: closing an open gripper is the
    # grasp attempt, so that step ends the episode and the cell's label
    # (lift and drop test) decides it. Q(s, close) is then the grasp's chance at s, and a
    # closed gripper is never a state the policy acts in (docs/decisions.md).
    close_ends_episode: bool = False
    # reward of every step before the last; App. C ablation: 0 for discount-only
    step_penalty: float = STEP_PENALTY
    success_reward: float = SUCCESS_REWARD  # the last step's reward after a successful grasp
    # App. D.4: reward 1 only when the grasp succeeded *and* the gripper ended the episode above
    # this height (m; the paper's "threshold", here Algorithm 2's). A grasp ended at the floor
    # earns 0 although the drop test's lift may still hold the object; 0 disables the condition.
    success_min_height: float = bounded(SCRIPTED_TERMINATION_HEIGHT, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.scripted_termination_height not in TERMINATION_HEIGHTS:
            raise ValueError(f"scripted_termination_height {self.scripted_termination_height!r}: "
                             f"expected one of {TERMINATION_HEIGHTS}")

    @classmethod
    def ending_by(cls, termination: str, **fields: Any) -> EpisodeConfig:
        """The config whose episodes end by ``termination``, one of ``TERMINATIONS``; under
        "close" the e bit is ignored, as under Algorithm 2."""
        if termination not in TERMINATIONS:
            raise ValueError(f"termination {termination!r}: expected one of {TERMINATIONS}")
        return cls(scripted_termination=termination != "learned",
                   close_ends_episode=termination == "close", **fields)


def scripted_termination(observation: Observation, action: Action) -> bool:
    """Algorithm 2: gripper closed, above the termination height, commanded upward."""
    return (
        observation.gripper_closed
        and observation.height_to_bottom > SCRIPTED_TERMINATION_HEIGHT
        and action.translation[2] > 0.0
    )


def final_reward(success: bool, final_height: float, config: EpisodeConfig) -> float:
    """The last step's reward (Sec. 5): 1 on success with the gripper ending above
    ``config.success_min_height`` (App. D.4), else 0."""
    # Under close_ends_episode the label's own lift is the one the condition asks for.
    lifted = config.close_ends_episode or final_height > config.success_min_height
    return config.success_reward if success and lifted else 0.0


def step_rewards(num_steps: int, success: bool, final_height: float,
                 config: EpisodeConfig) -> list[float]:
    """Sec. 5: the penalty on every step before the last; the last gets :func:`final_reward`."""
    return [config.step_penalty] * (num_steps - 1) + [final_reward(success, final_height,
                                                                   config)]


def take_step(cell: Cell, observation: Observation, action: Action,
              config: EpisodeConfig) -> tuple[Observation, Termination | None]:
    """One step of Algorithm 1 from ``observation``: the next observation, and the termination
    the step causes (the learned ``e`` bit, Algorithm 2 under ``scripted_termination``, or the
    close under ``close_ends_episode``), None to go on; the step limit is the caller's. A learned
    termination is not executed."""
    if action.terminate and not config.scripted_termination:
        return observation, Termination.LEARNED
    cell.execute(action)
    next_observation = cell.observe()
    if config.close_ends_episode and action.gripper_close and not observation.gripper_closed:
        return next_observation, Termination.SCRIPTED
    # Algorithm 2 reads the action's start state or the state it leads to.
    read = observation if config.scripted_termination_height == "state" else next_observation
    if config.scripted_termination and scripted_termination(read, action):
        return next_observation, Termination.SCRIPTED
    return next_observation, None


def relabel_rewards(record: EpisodeRecord, step_penalty: float) -> EpisodeRecord:
    """The episode with ``step_penalty`` on every step before the last (App. C's
    penalty-vs-discount ablation on bags recorded under the other). The last step keeps its
    recorded reward: the rule the episode ended by decided it (the lift of App. D.4, or the
    label's own lift when the close ended the episode)."""
    last = len(record.steps) - 1
    return dataclasses.replace(record, steps=[
        s if i == last else dataclasses.replace(s, reward=step_penalty)
        for i, s in enumerate(record.steps)])


def run_episode(
    cell: Cell,
    policy: Policy,
    seed: int,
    config: EpisodeConfig = EpisodeConfig(),
    cell_id: str = "cell0",
    model_version: int = 0,
    on_step: Callable[[int, Action, float, Observation], None] | None = None,
) -> EpisodeRecord:
    """Run one episode of Algorithm 1 and label it by the drop test.

    ``on_step(step, action, q_value, next_observation)`` is called after every step."""
    observation = cell.reset(seed)
    policy.reset(seed)
    transitions: list[tuple[Observation, Action, float]] = []
    termination = Termination.MAX_STEPS
    for step in range(config.max_steps):
        output = policy.select_action(observation, step)
        transitions.append((observation, output.action, output.q_value))
        observation, stop = take_step(cell, observation, output.action, config)
        if on_step is not None:
            on_step(step, output.action, output.q_value, observation)
        if stop is not None:
            termination = stop
            break
    label = cell.label_grasp()
    rewards = step_rewards(len(transitions), label.success, observation.height_to_bottom,
                           config)
    steps = [
        StepRecord(obs, action, reward, i == len(transitions) - 1, q)
        for i, ((obs, action, q), reward) in enumerate(zip(transitions, rewards, strict=True))
    ]
    return EpisodeRecord(
        episode_id=f"{cell_id}-{seed}",
        cell_id=cell_id,
        policy_name=policy.name,
        model_version=model_version,
        termination=termination,
        steps=steps,
        final_observation=observation,
        success=label.success,
        ground_truth=label.ground_truth,
        object_ids=list(cell.object_ids),
        seed=seed,
    )
