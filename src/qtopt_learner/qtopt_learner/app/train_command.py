"""``qtopt train``: off-policy training from recorded bags (App. F.2) on either engine.

Its options are :class:`~qtopt_learner.learner_config.LearnerConfig`'s fields, nested configs
included (``--trainer.lr``, ``--hub.offline.terminal_fraction``, ``--trainers`` for the DDP
path), parsed by draccus over the ``--preset``'s learner (:func:`learner_preset`); ``--config``
starts from a saved config. A run directory holds checkpoints/, tensorboard/, model.pt and
config.yaml (a valid ``--config``); running the same command again resumes from the last
checkpoint. Parsing imports no torch; torch and the learner load once the options are good.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from qtopt_learner.app.input_checks import BAGS, check_offline, check_same_config, resolved
from qtopt_policy.config_files import parse_config, save_config
from qtopt_policy.usage import UsageError, check_folder, config_field_type

if TYPE_CHECKING:
    from qtopt_learner.learner_config import LearnerConfig

LEARNER = "qtopt_learner.learner_config:LearnerConfig"
TRAIN_HELP = "train off-policy from rosbag2 bags"


def add_steps_argument(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--steps", type=config_field_type(LEARNER, "steps"), default=default,
                        help="gradient steps to reach (a resumed run counts from its "
                        "checkpoint)")


def parse_train_config(options: list[str]) -> LearnerConfig:
    """The learner ``qtopt train OPTIONS`` runs: the preset's learner in a new run folder
    (``runs/offline__<seed>__<time>``), the ``--config`` file over it, the options over both;
    its bags resolved to absolute paths."""
    from qtopt_learner.learner_config import LearnerConfig, learner_preset

    def base(given: LearnerConfig) -> LearnerConfig:
        run_dir = f"runs/offline__{given.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
        return learner_preset(given.preset, run_dir=run_dir)

    config = parse_config(LearnerConfig, options, prog="qtopt train", base=base,
                          description=f"{TRAIN_HELP}. Options set LearnerConfig's fields over "
                          "the --preset's learner (the defaults shown are the sim preset's); "
                          "--config FILE starts from a saved config (a run folder's "
                          "config.yaml), options given beside it win.")
    if not config.offline_paths:
        raise UsageError(f"--offline_paths: none given; expected {BAGS} "
                         "(--offline_paths data/ or --offline_paths '[a, b]')")
    check_offline(config.offline_paths, "--offline_paths")
    check_folder("--run_dir", config.run_dir)
    # absolute, as the bags: the saved config resumes this folder from any working folder
    return dataclasses.replace(config, run_dir=str(Path(config.run_dir).resolve()),
                               offline_paths=resolved(config.offline_paths))


def _check_device(config: LearnerConfig) -> str:
    """The trainer's device, named (LearnerConfig has checked the name); UsageError where it
    is CUDA and this machine has none."""
    import torch

    device = config.resolved_device()
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {config.device}: no CUDA device here; expected auto or cpu")
    return str(device)


def run_train_command(args: argparse.Namespace) -> int:
    config = parse_train_config(args.options)
    from qtopt_learner.distributed.engine import make_learner
    from qtopt_learner.learner_config import LearnerConfig

    device = _check_device(config)
    run = Path(config.run_dir)
    # A resumed run may raise its step target; the device, the Ray cluster and the threads
    # say where and how fast it trains, not what it learns.
    check_same_config(config.layout.config, json.loads(config.to_json()),
                      ignore=("run_dir", "steps", "device", "ray_address", "torch_threads"),
                      paths=("offline_paths",),
                      defaults=json.loads(LearnerConfig().to_json()), flag="--run_dir")
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
