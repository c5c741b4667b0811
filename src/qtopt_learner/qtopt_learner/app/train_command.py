"""``qtopt train``: off-policy training from recorded bags (App. F.2) on either engine.

A run directory holds checkpoints/, tensorboard/, model.pt and config.json; running the same
command again resumes from the last checkpoint. The parser imports nothing heavy; torch and the
learner load once the arguments are known to be good.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qtopt_learner.app.input_checks import check_offline
from qtopt_policy.names import ENGINES, PRESET_NAMES
from qtopt_policy.usage import (
    UsageError,
    check_folder,
    non_negative_int,
    positive_int,
    proper_fraction,
)

if TYPE_CHECKING:
    from qtopt_learner.learner_config import LearnerConfig


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--offline", nargs="+", required=True, metavar="PATH",
                        help="bags or folders of bags to replay")
    parser.add_argument("--steps", type=positive_int, default=20_000,
                        help="gradient steps to reach")
    parser.add_argument("--run-dir", default="",
                        help="default: runs/offline__<seed>__<time>; an existing one resumes")
    parser.add_argument("--preset", default="sim", choices=PRESET_NAMES,
                        help="Q-network and trainer preset (paper: 472 px, wants a GPU)")
    parser.add_argument("--engine", default="inprocess", choices=ENGINES,
                        help="threads in this process, or Ray actors")
    parser.add_argument("--updaters", type=positive_int, default=1,
                        help="Bellman updaters computing targets (App. F.4)")
    parser.add_argument("--ray-address", default="",
                        help="an existing Ray cluster; default starts one on 127.0.0.1")
    parser.add_argument("--checkpoint-every", type=positive_int, default=1000,
                        help="gradient steps between checkpoints")
    parser.add_argument("--export-every", type=positive_int, default=1000,
                        help="gradient steps between TorchScript exports (model.pt)")
    parser.add_argument("--device", default="auto",
                        help="torch device of the trainer: auto (CUDA when there is one), cpu, "
                        "cuda or cuda:N")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the networks, replay sampling and log replay")
    parser.add_argument("--terminal-fraction", type=proper_fraction, default=0.0,
                        help="share of each replay sample taken from episodes' last "
                             "transitions (0: uniform, as the paper)")


def config_from_args(args: argparse.Namespace) -> LearnerConfig:
    from qtopt_learner.learner_config import learner_preset

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


def _check_device(config: LearnerConfig) -> str:
    """The trainer's device, named; UsageError for one torch does not know or this machine
    lacks."""
    import torch

    try:
        device = config.resolved_device()
    except RuntimeError as err:  # torch.device's error for an unknown name
        raise UsageError(f"--device {config.device}: {err}; expected auto, cpu, cuda or "
                         "cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {config.device}: no CUDA device here; expected auto or cpu")
    return str(device)


def run_train_command(args: argparse.Namespace) -> int:
    check_offline(args.offline)
    check_folder("--run-dir", args.run_dir)
    from qtopt_learner.distributed.engine import make_learner

    config = config_from_args(args)
    device = _check_device(config)
    run = Path(config.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(config.to_json())
    print(f"[qtopt] off-policy training, {config.preset} preset on {device}, "
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
