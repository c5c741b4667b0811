"""A two-state grasping MDP with known optimal Q values, run through the real episode loop.

State A (dark left half): terminating ends the episode unrewarded; any other action moves to
state B (dark right half). B is the last step (max_steps 2): closing the gripper succeeds (reward
1), anything else fails (0). With the step penalty -0.05 and gamma 0.9:
Q*(A, terminate) = 0, Q*(A, move) = -0.05 + 0.9 * 1 = 0.85, Q*(B, close) = 1, Q*(B, open) = 0.
"""

from __future__ import annotations

import math

import numpy as np

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig
from qtopt_collector.episode import EpisodeConfig, GraspLabel, run_episode
from qtopt_policy.episode_record import EpisodeRecord
from qtopt_policy.policies import PolicyOutput
from qtopt_policy.spec import Action, Observation

FRAME = 72
EPISODE_CONFIG = EpisodeConfig(max_steps=2)
Q_STAR = {("A", "terminate"): 0.0, ("A", "move"): 0.85, ("B", "close"): 1.0, ("B", "open"): 0.0}


def frame(state: str, rng: np.random.Generator) -> np.ndarray:
    """Dark left half and bright right half in A, the mirror image in B: the states differ in
    layout, not in overall brightness (which a per-image normalization removes)."""
    base = np.full((FRAME, FRAME, 3), 40)
    base[:, FRAME // 2:] = 200
    if state == "B":
        base = base[:, ::-1]
    return np.clip(base + rng.integers(-20, 21, (FRAME, FRAME, 3)), 0, 255).astype(np.uint8)


def observation(state: str, rng: np.random.Generator) -> Observation:
    return Observation(frame(state, rng), False, 0.3)


class ChainCell:
    object_ids: list[str] = []

    def reset(self, seed: int) -> Observation:
        self.rng = np.random.default_rng(seed)
        self.state, self.success = "A", False
        return observation("A", self.rng)

    def execute(self, action: Action) -> None:
        if self.state == "B":
            self.success = action.gripper_close
        self.state = "B"

    def observe(self) -> Observation:
        return observation(self.state, self.rng)

    def label_grasp(self) -> GraspLabel:
        return GraspLabel(self.success, self.success)


class RandomPolicy:
    name = "random"

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed + 1)

    def select_action(self, observation: Observation, step: int) -> PolicyOutput:
        r = self.rng
        action = Action(tuple(r.uniform(-0.05, 0.05, 2)) + (r.uniform(-0.08, 0.08),),
                        r.uniform(-math.pi / 8, math.pi / 8), bool(r.random() < 0.5),
                        bool(step == 0 and r.random() < 0.3))
        return PolicyOutput(action, math.nan)


def episodes(n: int, seed: int = 0) -> list[EpisodeRecord]:
    cell, policy = ChainCell(), RandomPolicy()
    return [run_episode(cell, policy, seed + i, EPISODE_CONFIG) for i in range(n)]


def probe_actions() -> dict[tuple[str, str], np.ndarray]:
    """One representative action per (state, choice) pair of Q_STAR."""
    return {
        ("A", "terminate"): Action((0.0, 0.0, 0.0), 0.0, False, True).to_vector(),
        ("A", "move"): Action((0.01, -0.01, -0.02), 0.1, False, False).to_vector(),
        ("B", "close"): Action((0.0, 0.01, 0.0), 0.0, True, False).to_vector(),
        ("B", "open"): Action((0.0, 0.01, 0.0), 0.0, False, False).to_vector(),
    }


def write_bags(out_dir, n: int, seed: int = 0) -> None:
    """``n`` random-policy episodes recorded to rosbag2 under ``out_dir``."""
    recorder = BagRecorder(RecorderConfig(out_dir=str(out_dir)))
    for record in episodes(n, seed):
        recorder.write(record)
