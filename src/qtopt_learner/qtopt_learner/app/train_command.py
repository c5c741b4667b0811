"""``qtopt train``: off-policy training from recorded bags (App. F.2) on either engine.

A run directory holds checkpoints/, tensorboard/, model.pt and config.json; running the same
command again resumes from the last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from qtopt_learner.distributed.engine import make_learner
from qtopt_learner.learner_config import ENGINES, TRAINER_PRESETS, LearnerConfig, learner_preset


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--offline", nargs="+", required=True, metavar="PATH",
                        help="bags or folders of bags to replay")
    parser.add_argument("--steps", type=int, default=20_000, help="gradient steps to reach")
    parser.add_argument("--run-dir", default="",
                        help="default: runs/offline__<seed>__<time>; an existing one resumes")
    parser.add_argument("--preset", default="sim", choices=sorted(TRAINER_PRESETS))
    parser.add_argument("--engine", default="inprocess", choices=ENGINES)
    parser.add_argument("--updaters", type=int, default=1)
    parser.add_argument("--ray-address", default="",
                        help="an existing Ray cluster; default starts one on 127.0.0.1")
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--export-every", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--terminal-fraction", type=float, default=0.0,
                        help="share of each replay sample taken from episodes' last "
                             "transitions (0: uniform, as the paper)")


def config_from_args(args: argparse.Namespace) -> LearnerConfig:
    run_dir = args.run_dir or f"runs/offline__{args.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    config = learner_preset(
        args.preset, run_dir=run_dir, offline_paths=tuple(args.offline), steps=args.steps,
        engine=args.engine, updaters=args.updaters, ray_address=args.ray_address,
        device=args.device, seed=args.seed, checkpoint_every=args.checkpoint_every,
        export_every=args.export_every)
    hub, fraction = config.hub, args.terminal_fraction
    return dataclasses.replace(config, hub=dataclasses.replace(
        hub, offline=dataclasses.replace(hub.offline, terminal_fraction=fraction),
        online=dataclasses.replace(hub.online, terminal_fraction=fraction)))


def run_train_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    run = Path(config.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(config.to_json())
    print(f"[qtopt] off-policy training, {config.preset} preset on {config.resolved_device()}, "
          f"engine {config.engine} with {config.updaters} Bellman updater(s), "
          f"{config.steps} steps; run directory {run}", flush=True)
    start = time.monotonic()
    with make_learner(config) as learner:
        if learner.resumed_from is not None:
            print(f"[qtopt] resuming from {learner.resumed_from} at step "
                  f"{learner.start_step}", flush=True)
        summary = learner.train()
    elapsed = time.monotonic() - start
    print(f"[qtopt] reached step {summary.step} in {elapsed:.0f} s; "
          f"model {run / 'model.pt'}, TensorBoard logs in {run / 'tensorboard'}")
    return 0
