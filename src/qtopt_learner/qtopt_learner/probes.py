"""Probes of what a trained Q-function has learned, for reports and experiments.

``stop_value_auc``: does Q(s, stop) tell a held object from an empty gripper? On lifted states
with the gripper closed (where App. D.4's reward decides on termination), Q(s, stop) should
rank the states of successful grasps above those of failed ones; the probe reports the area
under that ranking's ROC curve (0.5: chance, 1: perfect), measured on scripted episodes, whose
lifts give both kinds of states.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from qtopt_collector.episode import SCRIPTED_TERMINATION_HEIGHT, EpisodeConfig, run_episode
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_policy.cem_actor import StateBatch, evaluate_actions
from qtopt_policy.episode_record import EpisodeRecord
from qtopt_policy.policies import local_policy
from qtopt_policy.spec import Action, ActionBounds
from qtopt_policy.torchscript_model import load_model

PROBE_SEED = 400_000  # scripted probe episodes use seeds from here, apart from evaluation's


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
        success = record.success if record.ground_truth is None else record.ground_truth
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


def scripted_episodes(cell_config: SimCellConfig, episode_config: EpisodeConfig,
                      episodes: int, seed: int = PROBE_SEED) -> list[EpisodeRecord]:
    """``episodes`` pi_scripted episodes in process (each closes, then lifts)."""
    cell = SimCell(cell_config)
    try:
        return [run_episode(cell, local_policy("scripted", ActionBounds(), seed + k), seed + k,
                            episode_config) for k in range(episodes)]
    finally:
        cell.close()
