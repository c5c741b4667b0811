"""Grasp-success evaluation in the simulated cell (Kalashnikov et al. 2018, Sec. 6.1,
protocol 1: grasps with replacement) for the scripted policy or any TorchScript model.

Each attempt is one episode on a freshly seeded bin of held-out test objects; success is the
simulator's ground truth (an object held above the success height), reported with a 95 %
Wilson interval, next to the image-subtraction label's rate. Workers are separate processes,
each with its own PyBullet world.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
from dataclasses import dataclass

import torch
from tqdm import tqdm

from qtopt_collector.episode import EpisodeConfig, run_episode
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_policy.cem_actor import CEMActor
from qtopt_policy.policies import LOCAL_POLICIES, GreedyCEMPolicy, Policy, local_policy
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import load_model


@dataclass(frozen=True)
class EvalResult:
    policy: str
    attempts: int
    successes: int  # simulator ground truth
    labeled_successes: int  # image subtraction (what a real cell would report)
    mean_steps: float

    @property
    def rate(self) -> float:
        return self.successes / max(self.attempts, 1)

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.attempts)

    def summary(self) -> str:
        low, high = self.interval
        return (f"{self.policy}: {self.successes}/{self.attempts} = {self.rate:.1%} "
                f"(95 % CI {low:.1%}-{high:.1%}), labeled {self.labeled_successes}, "
                f"{self.mean_steps:.1f} steps/episode")


def wilson_interval(successes: int, attempts: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial rate."""
    if attempts == 0:
        return 0.0, 1.0
    p = successes / attempts
    denom = 1 + z * z / attempts
    centre = (p + z * z / (2 * attempts)) / denom
    half = z * math.sqrt(p * (1 - p) / attempts + z * z / (4 * attempts * attempts)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def make_policy(model: str, seed: int = 0) -> Policy:
    """A local policy name (``scripted``) or a TorchScript model path (greedy CEM on Q_bar_1)."""
    if model in LOCAL_POLICIES:
        return local_policy(model, ActionBounds(), seed=seed)
    loaded = load_model(model)
    actor = CEMActor(loaded.module, loaded.metadata.bounds, loaded.metadata.cem)
    return GreedyCEMPolicy(actor, loaded.metadata.image_size, seed=seed)


def _attempts(args: tuple[str, SimCellConfig, EpisodeConfig, list[int], bool]) -> list[tuple]:
    model, cell_config, episode_config, seeds, progress = args
    torch.set_num_threads(1)
    cell = SimCell(cell_config)
    policy = make_policy(model, seed=seeds[0] if seeds else 0)
    out = []
    try:
        for seed in tqdm(seeds, desc=f"eval {model if model in LOCAL_POLICIES else 'model'}",
                         disable=not progress, leave=False):
            ep = run_episode(cell, policy, seed, episode_config)
            out.append((bool(ep.ground_truth), ep.success, len(ep.steps)))
    finally:
        cell.close()
    return out


def evaluate(model: str, attempts: int, seed: int = 100_000, objects: str = "test",
             workers: int = 1, cell_config: SimCellConfig = SimCellConfig(),
             episode_config: EpisodeConfig = EpisodeConfig(),
             progress: bool = True) -> EvalResult:
    """``attempts`` grasps with replacement (seeds ``seed``..``seed + attempts - 1``)."""
    cell_config = dataclasses.replace(cell_config, object_split=objects)
    seeds = list(range(seed, seed + attempts))
    shards = [(model, cell_config, episode_config, seeds[i::workers], progress and i == 0)
              for i in range(workers)]
    if workers == 1:
        rows = _attempts(shards[0])
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            rows = [r for part in pool.map(_attempts, shards) for r in part]
    return EvalResult(str(model), len(rows), sum(r[0] for r in rows), sum(r[1] for r in rows),
                      sum(r[2] for r in rows) / max(len(rows), 1))
