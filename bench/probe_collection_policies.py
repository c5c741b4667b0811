"""Probe: does a concurrent run's exploration policy grasp as well as its greedy policy?

Question (docs/benchmarks.md, "Attempt 7"): attempt 7's greedy policy grasped 4 of 40 held-out
objects at step 5,234, yet pi_noisy around the same exports succeeded in none of its first
230 collection episodes, and the on-policy buffer full of failures then pulled every value
below the returns. Either pi_noisy's random actions (epsilon 0.2: moves, gripper toggles)
undo grasps the greedy policy makes, or the collection cell (train objects, the bin kept for
10 episodes) is harder for the learned policy than the held-out cell (a fresh bin each time).

For each export named, the script runs greedy, pi_noisy (the collection's
``EpsilonGreedyPolicy``) and scripted_noisy on the same seeds in both cells of the run (rebuilt
from the run's ``results.json`` arguments) and prints success, mean steps and how episodes
ended. Writes ``collection_policies.json`` and ``collection_policies.png`` into the run folder.

    python bench/probe_collection_policies.py runs/concurrent7 --steps 5234 10002 --episodes 30
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from concurrent_learning import run_cells  # noqa: E402

from qtopt_collector.episode import run_episode  # noqa: E402
from qtopt_collector.evaluation import wilson_interval  # noqa: E402
from qtopt_collector.sim_cell import SimCell, SimCellConfig  # noqa: E402
from qtopt_policy.policies import EpsilonGreedyPolicy, Policy, greedy_policy, local_policy  # noqa: E402
from qtopt_policy.spec import ActionBounds  # noqa: E402

FIRST_SEED = 900_000  # apart from the run's collection (seed * 1e7 + k) and evaluation seeds


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="a bench/concurrent_learning.py run folder")
    p.add_argument("--steps", type=int, nargs="+", required=True,
                   help="gradient steps of the exports to probe (learner/models/model-STEP.pt)")
    p.add_argument("--episodes", type=int, default=30, help="episodes per policy and cell")
    return p.parse_args()


def run_args(run_dir: Path) -> argparse.Namespace:
    """The run's arguments as concurrent_learning parsed them (results.json keeps strings)."""
    saved = json.loads((run_dir / "results.json").read_text())["args"]
    return argparse.Namespace(
        step_penalty=float(saved["step_penalty"]), termination=saved["termination"],
        termination_height=saved.get("termination_height", "next"), preset=saved["preset"],
        substeps=int(saved["substeps"]), respawn_every=int(saved["respawn_every"]))


def make_policy(name: str, model: Path, seed: int) -> Policy:
    """The named policy as the run's collection builds it (only this one loads the model)."""
    bounds = ActionBounds()
    if name == "scripted_noisy":
        return local_policy(name, bounds, seed=seed)
    greedy = greedy_policy(str(model), seed=seed)
    return greedy if name == "greedy" else EpsilonGreedyPolicy(greedy, bounds, seed=seed)


def probe(model: Path, cells: dict[str, SimCellConfig], episode_config, episodes: int) -> list:
    rows = []
    for cell_name, cell_config in cells.items():
        for name in ("greedy", "pi_noisy", "scripted_noisy"):
            cell = SimCell(cell_config)  # each policy meets the same bins in the same order
            outcomes, steps, ends = [], [], collections.Counter()
            for k in range(episodes):
                seed = FIRST_SEED + k
                policy = make_policy(name, model, seed)
                record = run_episode(cell, policy, seed, episode_config)
                outcomes.append(bool(record.ground_truth))
                steps.append(len(record.steps))
                ends[record.termination.name.lower()] += 1
            rows.append({"model": model.name, "cell": cell_name, "policy": name,
                         "successes": sum(outcomes), "episodes": episodes,
                         "mean_steps": sum(steps) / episodes, "ends": dict(ends)})
            print(f"[probe] {model.name} {cell_name:10s} {name:15s} "
                  f"{sum(outcomes):3d}/{episodes}  {sum(steps) / episodes:5.1f} steps  "
                  f"{dict(ends)}", flush=True)
    return rows


def plot(rows: list, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 4))
    labels = sorted({(r["model"], r["cell"]) for r in rows})
    width = 0.25
    for i, name in enumerate(("greedy", "pi_noisy", "scripted_noisy")):
        chosen = [next(r for r in rows if (r["model"], r["cell"]) == label
                       and r["policy"] == name) for label in labels]
        rates = [r["successes"] / r["episodes"] for r in chosen]
        bounds = [wilson_interval(r["successes"], r["episodes"]) for r in chosen]
        ax.bar([j + i * width for j in range(len(labels))], rates, width, label=name,
               yerr=[[r - lo for r, (lo, _) in zip(rates, bounds, strict=True)],
                     [hi - r for r, (_, hi) in zip(rates, bounds, strict=True)]])
    ax.set_xticks([j + width for j in range(len(labels))],
                  [f"{m.removesuffix('.pt')}\n{c}" for m, c in labels], fontsize=8)
    ax.set(ylabel="grasp success (truth)", ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    if args.episodes < 1:
        raise SystemExit(f"probe_collection_policies: error: --episodes {args.episodes}: "
                         "expected >= 1")
    run = args.run_dir.resolve()
    models = [run / "learner" / "models" / f"model-{step:09d}.pt" for step in args.steps]
    for model in models:
        if not model.exists():
            raise SystemExit(f"probe_collection_policies: error: --steps: {model} does not "
                             "exist; expected an export of the run")
    episode_config, train_cell, eval_cell = run_cells(run_args(run))
    cells = {"collection": train_cell,
             "held-out": dataclasses.replace(eval_cell, object_split="test")}
    rows = [row for model in models for row in probe(model, cells, episode_config,
                                                     args.episodes)]
    (run / "collection_policies.json").write_text(json.dumps(rows, indent=1))
    plot(rows, run / "collection_policies.png")


if __name__ == "__main__":
    main()
