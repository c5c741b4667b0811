"""``qtopt train``: off-policy training from recorded bags (App. F.2) on either engine.

A run directory holds checkpoints/, tensorboard/, model.pt and config.yaml (the
LearnerConfig, which ``config_files.load_config`` reads back); running the same
command again resumes from the last checkpoint. The parser imports nothing heavy; torch and the
learner load once the arguments are known to be good.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qtopt_learner.app.input_checks import check_offline, check_same_config, resolved
from qtopt_policy.cli_arguments import (
    add_engine_argument,
    add_offline_argument,
    add_preset_argument,
    add_run_dir_argument,
    add_seed_argument,
)
from qtopt_policy.config_files import save_config
from qtopt_policy.usage import UsageError, check_folder, config_field_type

if TYPE_CHECKING:
    from qtopt_learner.learner_config import LearnerConfig

LEARNER = "qtopt_learner.learner_config:LearnerConfig"
REPLAY = "qtopt_learner.distributed.replay:ReplayConfig"


def add_steps_argument(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--steps", type=config_field_type(LEARNER, "steps"), default=default,
                        help="gradient steps to reach (a resumed run counts from its "
                        "checkpoint)")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    add_offline_argument(parser, required=True)
    add_steps_argument(parser, default=20_000)
    add_run_dir_argument(parser)
    add_preset_argument(parser)
    add_engine_argument(parser)
    parser.add_argument("--updaters", type=config_field_type(LEARNER, "updaters"), default=1,
                        help="Bellman updaters computing targets (App. F.4)")
    parser.add_argument("--ray-address", default="",
                        help="an existing Ray cluster; default starts one on 127.0.0.1")
    parser.add_argument("--checkpoint-every", type=config_field_type(LEARNER, "checkpoint_every"),
                        default=1000, help="gradient steps between checkpoints")
    parser.add_argument("--export-every", type=config_field_type(LEARNER, "export_every"),
                        default=1000, help="gradient steps between TorchScript exports "
                        "(model.pt)")
    parser.add_argument("--device", default="auto",
                        help="torch device of the trainer: auto (CUDA when there is one), cpu, "
                        "cuda or cuda:N")
    add_seed_argument(parser, LEARNER)
    parser.add_argument("--terminal-fraction", type=config_field_type(REPLAY, "terminal_fraction"),
                        default=0.0, help="share of each replay sample taken from episodes' "
                        "last transitions (0: uniform, as the paper)")


def config_from_args(args: argparse.Namespace) -> LearnerConfig:
    from qtopt_learner.learner_config import learner_preset

    run_dir = args.run_dir or f"runs/offline__{args.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    config = learner_preset(
        args.preset, run_dir=run_dir, offline_paths=resolved(args.offline), steps=args.steps,
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
    from qtopt_learner.learner_config import LearnerConfig

    config = config_from_args(args)
    device = _check_device(config)
    run = Path(config.run_dir)
    # A resumed run may raise its step target; the device and the Ray cluster say where it
    # trains, not what it learns.
    check_same_config(config.layout.config, json.loads(config.to_json()),
                      ignore=("run_dir", "steps", "device", "ray_address"),
                      paths=("offline_paths",),
                      defaults=json.loads(LearnerConfig().to_json()))
    run.mkdir(parents=True, exist_ok=True)
    save_config(config, config.layout.config)
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
