"""Recorded episodes of the grasping MDP (Kalashnikov et al. 2018, Sec. 5, App. D.4).

Pure data beside the spec: the collector writes these records, bags carry them
(``qtopt_msgs/Episode``) and the learner's replay reads them, so none of them needs the episode
loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from qtopt_policy.spec import Action, Observation


class Termination(IntEnum):
    """How an episode ended (Sec. 5, Algorithm 2); values match
    qtopt_msgs/Episode.TERMINATION_*."""

    LEARNED = 0
    SCRIPTED = 1
    MAX_STEPS = 2


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
