"""Probes of what a trained Q-function has learned, for reports and experiments.

``stop_value_auc``: does Q(s, stop) tell a held object from an empty gripper? On lifted states
with the gripper closed (where App. D.4's reward decides on termination), Q(s, stop) should
rank the states of successful grasps above those of failed ones; the probe reports the area
under that ranking's ROC curve (0.5: chance, 1: perfect), measured on scripted episodes, whose
lifts give both kinds of states.

``action_ranking``: does Q rank actions within a state? On the states of scripted episodes it
scores the scripted action against a few alternatives (close or open in place, full descent,
full ascent), per phase of the grasp: descending open above the termination height, at the
close, lifting closed. A Q-function that learned the task prefers the scripted action where
the scripted policy grasps (descending, closing low, lifting); one flat in the action does not.
Per phase it also reports the AUC of Q(s, scripted action) against the grasp's truth: whether
the value sees which closes will hold and which lifts carry an object (under Algorithm 2's
termination the lift from the floor is where the episode's outcome is decided).

``outcome_auc``: does Q(s, a) of the actions taken tell successful episodes from failed ones, at
the close and at the last transition (whose target is the reward alone)? Scored on the
training episodes and on held-out ones, it separates fitting the data from generalizing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from qtopt_collector.episode import SCRIPTED_TERMINATION_HEIGHT
from qtopt_learner.distributed.replay import discounted_returns
from qtopt_policy.cem_actor import StateBatch, evaluate_actions
from qtopt_policy.episode_record import EpisodeRecord, StepRecord
from qtopt_policy.spec import GAMMA, Action, ActionBounds, Observation
from qtopt_policy.torchscript_model import LoadedModel, load_model


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the rank statistic (ties count half); NaN when one class
    is missing."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    positives, negatives = scores[labels], scores[~labels]
    if not len(positives) or not len(negatives):
        return float("nan")
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positives) * len(negatives)))


@dataclass(frozen=True)
class StopValueProbe:
    auc: float
    states: int  # lifted closed-gripper states scored
    successes: int  # of them, from successful grasps
    q_success: float  # mean Q(s, stop) on those states
    q_failure: float

    def summary(self) -> str:
        return (f"AUC {self.auc:.3f} of Q(s, stop) on {self.states} lifted states "
                f"({self.successes} holding an object): mean Q {self.q_success:.3f} holding, "
                f"{self.q_failure:.3f} empty")


def lifted_states(records: Iterable[EpisodeRecord],
                  min_height: float = SCRIPTED_TERMINATION_HEIGHT) -> tuple[list, np.ndarray]:
    """Observations with the gripper closed above ``min_height`` and whether their episode's
    grasp succeeded (the simulator's truth where known)."""
    observations, labels = [], []
    for record in records:
        success = record.outcome
        states = [s.observation for s in record.steps] + [record.final_observation]
        for obs in states:
            if obs.gripper_closed and obs.height_to_bottom > min_height:
                observations.append(obs)
                labels.append(success)
    return observations, np.array(labels, dtype=bool)


def stop_value_auc(model: str, records: Iterable[EpisodeRecord]) -> StopValueProbe:
    """Score Q(s, stop) of ``model`` (a TorchScript file) on the lifted states of
    ``records``."""
    loaded = load_model(model)
    observations, labels = lifted_states(records)
    if not observations:
        return StopValueProbe(float("nan"), 0, 0, float("nan"), float("nan"))
    states = StateBatch.from_observations(observations, loaded.metadata.image_size)
    stop = torch.from_numpy(Action.stop().to_vector()).expand(len(observations), -1)
    q = evaluate_actions(loaded.module, states, stop).numpy()
    return StopValueProbe(roc_auc(q, labels), len(q), int(labels.sum()),
                          float(q[labels].mean()) if labels.any() else float("nan"),
                          float(q[~labels].mean()) if (~labels).any() else float("nan"))


PHASES = ("descent", "close", "lift")
ALTERNATIVES = ("close here", "open here", "down", "up")


def phase_of(observation: Observation, action: Action) -> str | None:
    """The grasp phase of a scripted state: descending open high, closing, lifting closed."""
    if not observation.gripper_closed and action.gripper_close:
        return "close"
    if not observation.gripper_closed and observation.height_to_bottom > \
            SCRIPTED_TERMINATION_HEIGHT:
        return "descent"
    if observation.gripper_closed and action.gripper_close and action.translation[2] > 0:
        return "lift"
    return None


def alternatives(observation: Observation, bounds: ActionBounds = ActionBounds()) -> list[Action]:
    """The actions of ``ALTERNATIVES`` in a state: close, open, full descent, full ascent (the
    two moves keep the gripper as it is)."""
    z = float(bounds.translation_limits()[2])
    closed = observation.gripper_closed
    return [Action((0.0, 0.0, 0.0), 0.0, True, False), Action((0.0, 0.0, 0.0), 0.0, False, False),
            Action((0.0, 0.0, -z), 0.0, closed, False), Action((0.0, 0.0, z), 0.0, closed, False)]


@dataclass(frozen=True)
class ActionRanking:
    """Q of the scripted action and of each alternative, mean over one phase's states."""

    phase: str
    states: int
    q_scripted: float
    q_alternatives: tuple[float, ...]  # in the order of ALTERNATIVES
    scripted_best: float  # share of states where no alternative scores above it
    # The scripted action's discounted return from these states (gamma of Sec. 4): what its Q
    # estimates; Q above it is overestimation.
    return_scripted: float
    auc: float  # of Q(s, scripted action) against the grasp's truth; NaN with one outcome

    def row(self) -> str:
        alts = " | ".join(f"{q:.3f}" for q in self.q_alternatives)
        return (f"| {self.phase} | {self.states} | {self.q_scripted:.3f} | "
                f"{self.return_scripted:.3f} | {alts} | {self.scripted_best:.2f} | "
                f"{self.auc:.2f} |")


def q_against_alternatives(loaded: LoadedModel, observations: list[Observation],
                           actions: list[Action]) -> np.ndarray:
    """Q of each state's given action, then of its ``ALTERNATIVES``: [states, 1 + 4]."""
    states = StateBatch.from_observations(observations, loaded.metadata.image_size)
    candidates = [[a, *alternatives(o)] for o, a in zip(observations, actions, strict=True)]
    return np.stack([evaluate_actions(
        loaded.module, states,
        torch.from_numpy(np.stack([c[k].to_vector() for c in candidates]))).numpy()
        for k in range(1 + len(ALTERNATIVES))], axis=1)


def action_ranking(model: str, records: Iterable[EpisodeRecord],
                   gamma: float = GAMMA) -> list[ActionRanking]:
    """Score the scripted actions of ``records`` (pi_scripted episodes) and their
    alternatives under ``model`` (a TorchScript file), one row per phase with states."""
    loaded = load_model(model)
    by_phase: dict[str, list[tuple[StepRecord, float, bool]]] = {p: [] for p in PHASES}
    for record in records:
        truth = record.outcome
        returns = discounted_returns(np.array([s.reward for s in record.steps]), gamma)
        for s, g in zip(record.steps, returns, strict=True):
            phase = phase_of(s.observation, s.action)
            if phase is not None:
                by_phase[phase].append((s, float(g), bool(truth)))
    rows = []
    for phase, items in by_phase.items():
        if not items:
            continue
        q = q_against_alternatives(loaded, [s.observation for s, _, _ in items],
                                   [s.action for s, _, _ in items])
        rows.append(ActionRanking(phase, len(items), float(q[:, 0].mean()),
                                  tuple(float(x) for x in q[:, 1:].mean(axis=0)),
                                  float((q[:, 0] >= q[:, 1:].max(axis=1)).mean()),
                                  float(np.mean([g for _, g, _ in items])),
                                  roc_auc(q[:, 0], np.array([t for _, _, t in items]))))
    return rows


@dataclass(frozen=True)
class OutcomeAUC:
    """AUC of Q(s, a), the action taken, against the grasp's truth at two kinds of
    transitions; NaN where one outcome is missing."""

    episodes: int
    close: float  # transitions that close an open gripper
    last: float  # each episode's last transition

    def summary(self) -> str:
        return f"close AUC {self.close:.2f}, last-transition AUC {self.last:.2f} " \
               f"on {self.episodes} episodes"


def outcome_auc(model: str, records: Iterable[EpisodeRecord]) -> OutcomeAUC:
    """Score the taken actions of ``records`` under ``model`` (a TorchScript file)."""
    loaded = load_model(model)
    closes: list[tuple[StepRecord, bool]] = []
    lasts: list[tuple[StepRecord, bool]] = []
    for record in records:
        truth = record.outcome
        closes += [(s, truth) for s in record.steps
                   if not s.observation.gripper_closed and s.action.gripper_close]
        lasts.append((record.steps[-1], truth))
    return OutcomeAUC(len(lasts), _taken_action_auc(loaded, closes),
                      _taken_action_auc(loaded, lasts))


def _taken_action_auc(loaded: LoadedModel, items: list[tuple[StepRecord, bool]]) -> float:
    if not items:
        return float("nan")
    states = StateBatch.from_observations([s.observation for s, _ in items],
                                          loaded.metadata.image_size)
    actions = torch.from_numpy(np.stack([s.action.to_vector() for s, _ in items]))
    q = evaluate_actions(loaded.module, states, actions).numpy()
    return roc_auc(q, np.array([t for _, t in items]))
