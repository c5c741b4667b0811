"""Probe: does a concurrent run's Q-function fit its data or generalize? (issue 15)

Scores the AUC of Q(s, a) of the taken actions against the grasp's truth
(``qtopt_learner.probes.outcome_auc``: the closing transition and each episode's last one) on
three sets of episodes:

- training: the newest ``--training`` scripted_noisy episodes of the run's bags, which the
  model trained on;
- fresh, train objects: new pi_scripted episodes in the run's training cell (same objects,
  seeds never collected);
- fresh, test objects: new pi_scripted episodes in the held-out evaluation cell.

A value that ranks its training episodes well and fresh ones near chance has memorized them.

    python bench/probe_fit.py runs/concurrent9 --episodes 60

The cells come from the run's recorded arguments (``results.json``); the model defaults to the
run's newest export. Results go to ``RUN/fit.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from concurrent_learning import parse_args as run_args  # noqa: E402
from concurrent_learning import run_cells  # noqa: E402

from qtopt_collector.bag_recorder import read_episodes  # noqa: E402
from qtopt_collector.evaluation import scripted_episodes  # noqa: E402
from qtopt_learner.probes import outcome_auc  # noqa: E402

FRESH_SEED = 777_000  # apart from the run's collection, evaluation and probe seeds


def _run_argv(run: Path) -> list[str]:
    """The run's command line again, from the arguments it recorded."""
    recorded = json.loads((run / "results.json").read_text())["args"]
    argv = [str(run)]
    for name, value in recorded.items():
        if name == "run_dir":
            continue
        flag = "--" + name.replace("_", "-")
        if value == "True":
            argv.append(flag)
        elif value != "False":
            argv += [flag, value]
    return argv


def run_cells_of(run: Path):
    """The episode rules, training cell and evaluation cell of a concurrent_learning run."""
    return run_cells(run_args(_run_argv(run)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a bench/concurrent_learning.py run folder")
    p.add_argument("--model", type=Path, help="default: the run's newest export")
    p.add_argument("--training", type=int, default=400, help="newest training episodes scored")
    p.add_argument("--episodes", type=int, default=60, help="fresh episodes per cell")
    args = p.parse_args()
    if not (args.run / "results.json").exists():
        raise SystemExit(f"probe_fit: error: {args.run}: expected a concurrent_learning run "
                         f"folder with results.json")
    model = args.model or args.run / "learner" / "model.pt"
    if not model.exists():
        raise SystemExit(f"probe_fit: error: --model {model}: no such file")
    episode, train_cell, eval_cell = run_cells_of(args.run)
    training = list(read_episodes(args.run / "episodes" / "scripted"))[-args.training:]
    sets = {
        "training": training,
        "fresh, train objects": scripted_episodes(train_cell, episode, args.episodes,
                                                  seed=FRESH_SEED),
        "fresh, test objects": scripted_episodes(eval_cell, episode, args.episodes,
                                                 seed=FRESH_SEED),
    }
    results = {}
    print(f"model {model}")
    print("| episodes | n | success | close AUC | last-transition AUC |")
    print("|---|---|---|---|---|")
    for name, records in sets.items():
        probe = outcome_auc(str(model), records)
        success = sum(r.outcome for r in records) / len(records)
        results[name] = {**dataclasses.asdict(probe), "success": success}
        print(f"| {name} | {probe.episodes} | {success:.1%} | {probe.close:.2f} | "
              f"{probe.last:.2f} |", flush=True)
    (args.run / "fit.json").write_text(json.dumps({"model": str(model), **results}, indent=1))


if __name__ == "__main__":
    main()
