"""Probe: is a run's ranking of actions signal or step-to-step noise? (issue 15)

Scores the scripted action and the probe's alternatives (``qtopt_learner.probes``: close or
open in place, full descent, full ascent) on the states of pi_scripted episodes on held-out
objects under each of a run's newest ``--exports`` exports (about 100 gradient steps apart in
bench/concurrent_learning.py) and compares two sizes:

- the gap: within one export, the best of the four alternatives minus the second best;
- the jitter: for one state and action, the standard deviation over the exports of the
  action's advantage (its Q minus the mean of the state's four), so that values moving together
  do not count.

If the jitter is as large as the gap, the greedy action of a state changes from export to
export (the share of states whose best alternative changes from one export to the next, and
from the first to the last, is reported too): the ranking is the noise of SGD, and a smaller
step size is the lever, not more data.

    python bench/probe_value_noise.py runs/concurrent10 --exports 10

Results go to ``RUN/value_noise.json`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from probe_fit import run_cells_of  # noqa: E402

from qtopt_collector.evaluation import scripted_episodes  # noqa: E402
from qtopt_learner.probes import PHASES, phase_of, q_against_alternatives  # noqa: E402
from qtopt_policy.torchscript_model import load_model  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a bench/concurrent_learning.py run folder")
    p.add_argument("--exports", type=int, default=10, help="the newest exports compared")
    p.add_argument("--episodes", type=int, default=30, help="scripted held-out episodes")
    args = p.parse_args()
    models = sorted((args.run / "learner" / "models").glob("model-*.pt"))[-args.exports:]
    if len(models) < 2:
        raise SystemExit(f"probe_value_noise: error: {args.run}: expected at least 2 exports "
                         f"in learner/models, found {len(models)}")
    episode, _, eval_cell = run_cells_of(args.run)
    steps = [s for r in scripted_episodes(eval_cell, episode, args.episodes) for s in r.steps]
    phases = np.array([phase_of(s.observation, s.action) or "other" for s in steps])
    observations, actions = [s.observation for s in steps], [s.action for s in steps]
    # [exports, states, 1 + alternatives]
    q = np.stack([q_against_alternatives(load_model(str(m)), observations, actions)
                  for m in models])
    alternatives = q[:, :, 1:]  # the scripted action may equal one of them
    ordered = np.sort(alternatives, axis=2)
    gap = ordered[:, :, -1] - ordered[:, :, -2]
    jitter = (alternatives - alternatives.mean(axis=2, keepdims=True)).std(axis=0).mean(axis=1)
    best = alternatives.argmax(axis=2)
    changes = (best[1:] != best[:-1]).mean(axis=0)
    drift = best[-1] != best[0]
    results = {"models": [m.name for m in models], "phases": {}}
    print(f"{len(models)} exports, {models[0].name} .. {models[-1].name}; "
          f"{len(steps)} states of {args.episodes} scripted held-out episodes")
    print("| phase | states | mean Q | gap best - second | advantage jitter | "
          "best changes per export | best changed first to last |")
    print("|---|---|---|---|---|---|---|")
    for phase in (*PHASES, "other", "all"):
        mask = phases == phase if phase != "all" else np.ones(len(steps), bool)
        if not mask.any():
            continue
        row = {"states": int(mask.sum()), "mean_q": float(q[:, mask].mean()),
               "gap": float(gap[:, mask].mean()), "jitter": float(jitter[mask].mean()),
               "best_changes": float(changes[mask].mean()),
               "best_changed_overall": float(drift[mask].mean())}
        results["phases"][phase] = row
        print(f"| {phase} | {row['states']} | {row['mean_q']:.3f} | {row['gap']:.4f} | "
              f"{row['jitter']:.4f} | {row['best_changes']:.2f} | "
              f"{row['best_changed_overall']:.2f} |")
    (args.run / "value_noise.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
