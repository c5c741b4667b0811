"""CEM with the stop scored exactly against CEM that samples the terminate bit (issue 15, item 4).

Every terminating action is the one canonical stop, so the previous CEM (loaded here from the
commit before the change, ``BEFORE``) spent about half of its samples on that single action,
and once stop led, its second iteration drew almost only stops. The current CEM samples moving
actions only and scores Q(s, stop) once. Both run on the same synthetic Q-functions: per state a
narrow peak among moving actions (value ``move``) and a stop value (``stop``), drawn so that
either may be the larger. Reported per variant: mean regret (the true maximum minus the value of
the chosen action), how often the right kind (stop or move) is chosen, moving samples per
state, and time per call, for the paper's 64 x 2 and a smaller budget.

    .venv/bin/python bench/bench_cem_stop.py [--states 2000]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import torch

from qtopt_policy.cem import cem_maximize, continuous_bounds
from qtopt_policy.spec import ACTION, ActionBounds

BEFORE = "1f27ccf"  # the last commit with the sampled terminate bit
BOUNDS = ActionBounds()
HALF = continuous_bounds(BOUNDS)
ROOT = Path(__file__).resolve().parent.parent


def load_previous_cem():
    """The CEM module as it was at ``BEFORE``, from git (no copy of it lives in the tree)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show",
                             f"{BEFORE}:src/qtopt_policy/qtopt_policy/cem.py"],
                            check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("cem_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cem_before"] = module
    exec(compile(source, f"cem.py@{BEFORE}", "exec"), module.__dict__)
    return module


class Problem:
    """Per state: a Gaussian peak of height ``move`` at a random moving action (close bit
    random too), and the canonical stop worth ``stop``."""

    def __init__(self, states: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.centre = (torch.rand(states, 4, generator=g) * 1.6 - 0.8) * HALF
        self.close = (torch.rand(states, generator=g) < 0.5).float()
        self.move = torch.rand(states, generator=g) * 0.6 + 0.3
        self.stop = torch.rand(states, generator=g)
        self.width = 0.3 * HALF

    def __call__(self, actions: torch.Tensor) -> torch.Tensor:
        angle = torch.atan2(ACTION.sin(actions), ACTION.cos(actions))
        c = torch.cat([ACTION.translation(actions), angle.unsqueeze(-1)], dim=-1)
        d = ((c - self.centre[:, None]) / self.width).pow(2).sum(-1)
        gripper = (ACTION.gripper_close(actions) == self.close[:, None]).float()
        moving = self.move[:, None] * torch.exp(-d / 2) * (0.5 + 0.5 * gripper)
        stop = self.stop[:, None].expand_as(moving)
        return torch.where(ACTION.terminate(actions) > 0.5, stop, moving)

    @property
    def best(self) -> torch.Tensor:
        return torch.maximum(self.move, self.stop)


def run(name: str, maximize, noise, config, problem: Problem, states: int) -> dict:
    """One CEM variant (its maximize function, noise and config) on ``problem``."""
    calls: list[int] = []

    def score(actions: torch.Tensor) -> torch.Tensor:
        calls.append(int((ACTION.terminate(actions) <= 0.5).sum()))
        return problem(actions)

    start = time.perf_counter()
    result = maximize(score, noise, BOUNDS, config)
    seconds = time.perf_counter() - start
    chosen = problem(result.actions[:, None])[:, 0]
    stop_chosen = ACTION.terminate(result.actions) > 0.5
    right_kind = (stop_chosen == (problem.stop > problem.move)).float().mean()
    return {"variant": name, "regret": float((problem.best - chosen).mean()),
            "right_kind": float(right_kind), "moving_samples": sum(calls) / states,
            "ms": 1000 * seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--states", type=int, default=2000)
    args = p.parse_args()
    torch.set_num_threads(1)
    before = load_previous_cem()
    problem = Problem(args.states, seed=0)
    rows = []
    for samples, iterations in ((64, 2), (32, 2)):
        budget = f"N={samples}, {iterations} it."
        for name, module in ((f"sampled stop ({BEFORE})", before),
                             ("exact stop (now)", sys.modules[cem_maximize.__module__])):
            config = module.CEMConfig(num_samples=samples, iterations=iterations)
            noise = module.draw_noise(args.states, config, torch.Generator().manual_seed(1))
            rows.append(run(f"{name}, {budget}", module.cem_maximize, noise, config, problem,
                            args.states))
    print(f"\n{args.states} states; regret = true maximum - value of the chosen action\n")
    print("| variant | mean regret | right kind (stop / move) | moving samples per state "
          "| ms per call |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['regret']:.4f} | {r['right_kind']:.1%} | "
              f"{r['moving_samples']:.0f} | {r['ms']:.0f} |")
    for k in range(0, len(rows), 2):
        old, new = rows[k], rows[k + 1]
        print(f"\n{new['variant']}: regret {new['regret'] / max(old['regret'], 1e-9):.2f}x of "
              f"the sampled stop's, {new['moving_samples'] / old['moving_samples']:.2f}x the "
              "moving samples")


if __name__ == "__main__":
    main()
