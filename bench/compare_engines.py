#!/usr/bin/env python3
"""Do the Ray engine and the in-process engine learn alike? Both train the two-state chain MDP
of the learner's tests (known optimal Q values) from the same bags, for the same step budget,
over several seeds; the table gives the max |Q - Q*| of the exported Q_bar_1 at each checkpoint
and the training loss, as mean +- std over seeds, and the difference of the means in units
of its standard error (|z| < 2: no detectable difference). Usage:

    .venv/bin/python bench/compare_engines.py [--seeds 3] [--steps 600]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
from module_loading import load_module

from qtopt_learner.distributed.engine import make_learner
from qtopt_policy.torchscript_model import load_model

TESTS = Path(__file__).resolve().parents[1] / "src" / "qtopt_learner" / "test"


def _load(name: str) -> ModuleType:
    return load_module(f"chain_tests.{name}", TESTS / f"{name}.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=200)
    args = parser.parse_args()
    package = type(sys)("chain_tests")
    package.__path__ = [str(TESTS)]
    sys.modules["chain_tests"] = package
    chain = _load("chain_mdp")
    learning = _load("test_learning_chain_mdp")
    root = Path(tempfile.mkdtemp(prefix="qtopt_engines_"))
    chain.write_bags(root / "bags", 300)
    checkpoints = list(range(args.every, args.steps + 1, args.every))
    errors = {e: np.zeros((args.seeds, len(checkpoints))) for e in ("inprocess", "ray")}
    losses = {e: np.zeros((args.seeds, len(checkpoints))) for e in ("inprocess", "ray")}
    for engine in errors:
        for seed in range(args.seeds):
            run = root / f"{engine}-{seed}"
            config = learning.chain_config(run, root / "bags", engine=engine, seed=seed,
                                           steps=args.steps, checkpoint_every=args.every,
                                           export_every=args.every)
            with make_learner(config, progress=False) as learner:
                for i, step in enumerate(checkpoints):
                    learner.train(steps=step)
                    model = load_model(run / "model.pt").module
                    q = learning.q_values(model, np.random.default_rng(0))
                    errors[engine][seed, i] = max(abs(q[k] - chain.Q_STAR[k]) for k in q)
                    losses[engine][seed, i] = learner.history[-1].metrics.loss
            print(f"{engine} seed {seed}: max |Q - Q*| {errors[engine][seed].round(3)}",
                  flush=True)
    print(f"\nchain MDP, {args.seeds} seeds per engine, 1 updater, same bags and budget\n")
    print("| step | in-process max err | Ray max err | z of difference | in-process loss | "
          "Ray loss |")
    print("|---|---|---|---|---|---|")
    for i, step in enumerate(checkpoints):
        a, b = errors["inprocess"][:, i], errors["ray"][:, i]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if args.seeds > 1 else 0
        z = (a.mean() - b.mean()) / se if se > 0 else float("nan")
        la, lb = losses["inprocess"][:, i], losses["ray"][:, i]
        print(f"| {step} | {a.mean():.3f} +- {a.std():.3f} | {b.mean():.3f} +- {b.std():.3f} | "
              f"{z:+.2f} | {la.mean():.3f} +- {la.std():.3f} | {lb.mean():.3f} +- "
              f"{lb.std():.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
