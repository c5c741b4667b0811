"""Recorded episodes of the grasping MDP (Kalashnikov et al. 2018, Sec. 5, App. D.4).

Pure data beside the spec: the collector writes these records, bags carry them
(``qtopt_msgs/Episode``) and the learner's replay reads them, so none of them needs the episode
loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum

from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.spec import Action, ActionBounds, CameraSpec, Observation

REWARD_RANGE = (-1.0, 1.0)  # Sec. 5: -0.05 per step, 1 for a success; ablations stay inside


class Termination(IntEnum):
    """How an episode ended (Sec. 5, Algorithm 2); values match
    qtopt_msgs/Episode.TERMINATION_*."""

    LEARNED = 0
    SCRIPTED = 1
    MAX_STEPS = 2

    @classmethod
    def of(cls, value: int) -> Termination:
        """The termination numbered ``value``; ValueError naming it when there is none."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(f"{t.value} ({t.name})" for t in cls)
            raise ValueError(f"termination {value!r}: expected one of {names}") from None


@dataclass(frozen=True)
class StepRecord:
    """One transition's (s, a, r) of Sec. 5, whether it ended the episode, and Q(s, a)."""

    observation: Observation
    action: Action
    reward: float
    done: bool
    q_value: float


@dataclass(frozen=True)
class EpisodeRecord:
    """One labeled episode: its steps, the state it ended in and the grasp outcome."""

    episode_id: str
    cell_id: str
    policy_name: str
    model_version: int
    termination: Termination
    steps: list[StepRecord]
    final_observation: Observation
    success: bool
    ground_truth: bool | None
    object_ids: list[str]
    seed: int

    @property
    def total_reward(self) -> float:
        return float(sum(s.reward for s in self.steps))

    @property
    def outcome(self) -> bool:
        """Whether the grasp held: the simulator's truth where known, else the label."""
        return bool(self.success if self.ground_truth is None else self.ground_truth)


class InvalidEpisodeError(ValueError):
    """An episode no bag or replay buffer takes. The message is one line: the episode, the
    field, its value and what was expected."""


@dataclass(frozen=True)
class EpisodeLimits:
    """What a consumer of episodes accepts beyond a well-formed episode."""

    bounds: ActionBounds = field(default_factory=ActionBounds)  # every action inside these
    # the smallest image side the consumer's network crops from; 0: any size
    min_image_size: int = bounded(0, ge=0)
    # the camera whose frames the images must be; unknown (width 0): any one size per episode
    camera: CameraSpec = field(default_factory=CameraSpec)

    def __post_init__(self) -> None:
        check_bounds(self)


@contextmanager
def error_context(where: str) -> Iterator[None]:
    """Prefix a ValueError raised inside with where in the episode it happened."""
    try:
        yield
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _check_observation(observation: Observation, first: Observation,
                       limits: EpisodeLimits) -> None:
    observation.validate(limits.min_image_size or None, limits.camera)
    shape, expected = observation.image.shape, first.image.shape
    if shape != expected:
        raise ValueError(f"image {shape[1]}x{shape[0]} px: expected {expected[1]}x{expected[0]} "
                         "px like the episode's first frame")


def _check_step(index: int, step: StepRecord, last: int) -> None:
    low, high = REWARD_RANGE
    if not low <= step.reward <= high:  # written so that NaN fails
        raise ValueError(f"reward {step.reward}: expected a value in [{low:g}, {high:g}]")
    if step.done != (index == last):
        where = "on the last step" if index == last else f"before the last step ({last})"
        raise ValueError(f"done {step.done} {where}: expected {index == last}")
    if not (math.isnan(step.q_value) or 0.0 <= step.q_value <= 1.0):
        raise ValueError(f"q_value {step.q_value}: expected NaN (no network scored it) or a "
                         "value in [0, 1]")


def validate_episode(record: EpisodeRecord, limits: EpisodeLimits = EpisodeLimits()
                     ) -> EpisodeRecord:
    """Return ``record`` when every part of it is what the spec says (Sec. 5), else raise
    :class:`InvalidEpisodeError` for the first bad field: no steps, an observation that is no
    rgb8 image of the right size or has a non-finite height, an action that is not finite or
    outside ``limits.bounds``, a reward outside [-1, 1], ``done`` not on exactly the last step,
    a Q value outside [0, 1], an unknown termination."""
    try:
        if not record.steps:
            raise ValueError("steps []: expected at least one step")
        Termination.of(record.termination)
        first = record.steps[0].observation
        last = len(record.steps) - 1
        for index, step in enumerate(record.steps):
            with error_context(f"step {index} observation"):
                _check_observation(step.observation, first, limits)
            with error_context(f"step {index} action"):
                step.action.validate(limits.bounds)
            with error_context(f"step {index}"):
                _check_step(index, step, last)
        with error_context("final_observation"):
            _check_observation(record.final_observation, first, limits)
        if record.termination == Termination.LEARNED and not record.steps[-1].action.terminate:
            raise ValueError(f"step {last} action terminate False: expected True, as the "
                             "termination is LEARNED")
    except ValueError as err:
        raise InvalidEpisodeError(f"episode {record.episode_id!r}: {err}") from None
    return record
