"""How much a main-job run collects, trains and evaluates (the issue's CPU and GPU budgets)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How much a run collects, trains and evaluates."""

    episodes: int  # collected by the cells while the learner trains
    steps: int  # the most gradient steps the learner takes
    steps_per_transition: float  # App. F.3's balancer: gradient steps per collected transition
    switch_step: int  # App. C: scripted collection alone until this gradient step
    eval_attempts: int  # protocol 1, per policy
    bin_attempts: int  # protocol 2, one bin per policy
    curve_points: int  # intermediate models on the learning curve
    curve_attempts: int  # protocol 1 attempts per intermediate model
    cells: int = 2  # simulated cells; 0: one per core beyond the two the learner uses


BUDGETS: dict[str, Budget] = {
    # 2 CPU cores, about 15 minutes (docs/benchmarks.md, "Main job"): the README's default.
    # One step per transition: at two, the learner memorized the few scripted episodes.
    "15m": Budget(1000, 8000, 1.0, 2000, 40, 20, 3, 16),
    # The long CPU budget: 2 cores, at most 2.5 h with evaluation. Half a step per transition
    # and the switch at 3000 steps are bench/concurrent_learning.py's attempt 13
    # (docs/benchmarks.md); two steps per transition memorized the scripted episodes.
    "2h": Budget(8000, 100_000, 0.5, 3000, 200, 30, 6, 40),
    # A machine with a GPU and more cores: cells on every core but two, a CUDA trainer.
    "gpu": Budget(6000, 120_000, 2.0, 8000, 200, 30, 6, 40, cells=0),
    # A few of everything, for tests and a first look at the pipeline.
    "smoke": Budget(12, 120, 4.0, 40, 4, 3, 2, 2),
}
