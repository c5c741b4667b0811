"""Probe: how does a concurrent run's greedy success move between its evaluations? (issue 15)

bench/concurrent_learning.py evaluates every few thousand gradient steps. When two evaluations
disagree (attempt 13: 37.5 % at 6k, 7.5 % at 9k), this probe evaluates the exports in between,
each on the same held-out attempts (the run's evaluation cell and seeds), and tells the two
readings apart:

- success that jumps between exports a few hundred steps apart: the greedy policy follows the
  noise of SGD, and a smaller step size or slower targets are the lever;
- success that drifts over thousands of steps: the value moves with the data the policy
  collects, and the lever is in the data or the targets.

    python bench/probe_export_curve.py runs/concurrent13 --first 5000 --last 10000 --count 8

Results go to ``RUN/export_curve.json``, ``RUN/export_curve.png`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from concurrent_learning import EVAL_SEED  # noqa: E402
from probe_fit import run_cells_of  # noqa: E402

from qtopt_collector.evaluation import evaluate  # noqa: E402
from qtopt_policy.policies import PolicySource  # noqa: E402

EXPORT = re.compile(r"model-(\d+)\.pt$")


def exports_between(models: Path, first: int, last: int, count: int) -> list[tuple[int, Path]]:
    """``count`` exports of ``models`` spread evenly over steps [first, last], by step."""
    found = sorted((int(m.group(1)), p) for p in models.glob("model-*.pt")
                   if (m := EXPORT.search(p.name)) and first <= int(m.group(1)) <= last)
    if len(found) < count:
        return found
    picks = {round(i * (len(found) - 1) / (count - 1)) for i in range(count)} if count > 1 \
        else {len(found) - 1}
    return [found[i] for i in sorted(picks)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a bench/concurrent_learning.py run folder")
    p.add_argument("--first", type=int, default=0, help="first gradient step")
    p.add_argument("--last", type=int, default=10**9, help="last gradient step")
    p.add_argument("--count", type=int, default=8, help="exports evaluated")
    p.add_argument("--attempts", type=int, default=20, help="held-out attempts per export")
    args = p.parse_args()
    models = args.run / "learner" / "models"
    if not (args.run / "results.json").is_file() or not models.is_dir():
        raise SystemExit(f"probe_export_curve: error: run {args.run}: expected a "
                         "bench/concurrent_learning.py run folder (results.json, learner/models)")
    if args.count < 1 or args.attempts < 1 or args.first > args.last:
        raise SystemExit(f"probe_export_curve: error: --count {args.count} --attempts "
                         f"{args.attempts} --first {args.first} --last {args.last}: expected "
                         "counts >= 1 and first <= last")
    picked = exports_between(models, args.first, args.last, args.count)
    if not picked:
        raise SystemExit(f"probe_export_curve: error: no export of {models} between steps "
                         f"{args.first} and {args.last}")
    episode, _, eval_cell = run_cells_of(args.run)
    rows = []
    print("| step | greedy held-out | 95 % interval | steps per episode |\n|---|---|---|---|")
    for step, model in picked:
        r = evaluate(PolicySource(model_path=str(model.resolve())), args.attempts,
                     seed=EVAL_SEED, cell_config=eval_cell, episode_config=episode,
                     progress=False)
        low, high = r.interval
        rows.append({"step": step, "successes": r.successes, "attempts": r.attempts,
                     "mean_steps": r.mean_steps, "interval": [low, high]})
        print(f"| {step:,} | {r.successes}/{r.attempts} | {100 * low:.1f}-{100 * high:.1f} % "
              f"| {r.mean_steps:.1f} |", flush=True)
    (args.run / "export_curve.json").write_text(json.dumps(rows, indent=1))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [r["step"] for r in rows]
    rates = [r["successes"] / r["attempts"] for r in rows]
    below = [rate - r["interval"][0] for rate, r in zip(rates, rows, strict=True)]
    above = [r["interval"][1] - rate for rate, r in zip(rates, rows, strict=True)]
    ax.errorbar(steps, rates, yerr=[below, above], marker="o", capsize=3)
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("greedy held-out success")
    ax.set_title(f"{args.run.name}: exports, {args.attempts} attempts each")
    fig.tight_layout()
    fig.savefig(args.run / "export_curve.png", dpi=120)


if __name__ == "__main__":
    main()
