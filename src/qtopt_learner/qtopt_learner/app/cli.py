"""The ``qtopt`` command: the project's main job and its tools.

Building the parser imports only light modules (names, budgets, ablation choices), so ``--help``
answers at once; each command checks its arguments (counts, paths, model files, a run folder's
saved config) before it imports torch, rclpy or pybullet or creates anything, and a bad one
ends the command with one ``qtopt: error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from qtopt_collector.ros.cli import (
    add_cell_arguments,
    add_cells_argument,
    run_cell_command,
    sim_for_model,
)
from qtopt_learner.app.eval_command import add_eval_arguments, run_eval_command
from qtopt_learner.app.export_command import add_export_arguments, run_export_command
from qtopt_learner.app.input_checks import check_offline, check_same_config, resolved
from qtopt_learner.app.train_command import (
    LEARNER,
    TRAIN_HELP,
    add_steps_argument,
    run_train_command,
)
from qtopt_policy.cli_arguments import (
    add_offline_argument,
    add_preset_argument,
    add_run_dir_argument,
    add_seed_argument,
)
from qtopt_policy.config_files import parse_config
from qtopt_policy.names import SERVED_POLICIES
from qtopt_policy.usage import (
    HelpFormatter,
    UsageError,
    check_folder,
    check_model,
    positive_int,
)

if TYPE_CHECKING:  # loaded once a command's arguments are known to be good
    from qtopt_collector.graph import CellGraphConfig
    from qtopt_learner.learner_config import LearnerConfig
    from qtopt_policy.model_file import ModelFileInfo

PROG = "qtopt"


class CommandParser(argparse.ArgumentParser):
    """Errors as one line, ``qtopt: error: --flag value: what was expected``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        # argparse words it "argument --episodes: -3: expected ..."; the flag leads, as in the
        # commands' own checks ("--model x.pt: ...").
        message = re.sub(r"^argument (\S+): ", r"\1 ", message).replace("\n", " ")
        self.exit(2, f"{PROG}: error: {message}\n")


RUN_HELP = "the main job: collect while training, evaluate, report (simulation)"


def _run(args: argparse.Namespace) -> int:
    """``qtopt run``: its options are :class:`MainJobConfig`'s fields (draccus), so a saved
    ``config.yaml`` is a valid ``--config`` and a run folder reproduces its run."""
    from qtopt_learner.app.main_job_config import MainJobConfig

    config = parse_config(MainJobConfig, args.options, prog=f"{PROG} run",
                          description=f"{RUN_HELP}. Options set MainJobConfig's fields; "
                          "--config FILE starts from a saved config (a run folder's "
                          "config.yaml), options given beside it win.")
    check_offline(config.offline_data, "--offline_data")
    check_folder("--run_dir", config.run_dir)
    run_dir = config.run_dir or f"runs/main__{config.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    # absolute, as the bags: the saved config resumes this folder from any working folder
    run_dir = str(Path(run_dir).resolve())
    config = dataclasses.replace(config, run_dir=run_dir,
                                 offline_data=resolved(config.offline_data))
    from qtopt_learner.app.main_job import MainJob
    from qtopt_learner.app.run_layout import RunLayout

    # the evaluation's worker processes change how fast it runs, not what it measures
    check_same_config(RunLayout(Path(run_dir).resolve()).config, dataclasses.asdict(config),
                      ignore=("run_dir", "eval_workers"), paths=("offline_data",),
                      defaults=dataclasses.asdict(MainJobConfig(run_dir=run_dir)),
                      flag="--run_dir")
    plan = config.plan
    print(f"[qtopt] QT-Opt in simulation, budget {config.budget}: {plan.episodes} episodes "
          f"collected on {config.num_cells} cells while the learner trains up to "
          f"{plan.steps} steps, then evaluation; run folder {run_dir}", flush=True)
    started = time.monotonic()
    report = MainJob(config).run_all()
    print(f"[qtopt] done in {time.monotonic() - started:.0f} s; report: {report}")
    return 0


def sim_graph_configs(args: argparse.Namespace, info: ModelFileInfo
                      ) -> tuple[CellGraphConfig, LearnerConfig]:
    """The cells and the learner of ``qtopt sim``: fine-tuning ``--model`` in its own MDP
    (``in_models_mdp``), with the camera it was trained with."""
    from qtopt_collector.graph import CellGraphConfig
    from qtopt_collector.sim_cell import SimCellConfig
    from qtopt_learner.app.training_graph import in_models_mdp
    from qtopt_learner.distributed.fine_tuning import FineTuningConfig
    from qtopt_learner.learner_config import learner_preset

    run = Path(args.run_dir).resolve()
    sim = sim_for_model(SimCellConfig(), info)
    learner = learner_preset(args.preset, run_dir=str(run), steps=args.steps, seed=args.seed,
                             offline_paths=resolved(args.offline),
                             fine_tuning=FineTuningConfig(enabled=True), camera=sim.camera(),
                             label_source=sim.label)
    cells = CellGraphConfig(cells=args.cells, policy=args.policy,
                            model_path=str(Path(args.model).resolve()),
                            out_dir=str(run / "online_cells"), sim=sim)
    return in_models_mdp(cells, learner, info)


def _sim(args: argparse.Namespace) -> int:
    """qtopt_learner's sim.launch.py graph through the project's runner (no ``ros2 launch``
    here)."""
    info = check_model("--model", args.model, preset=args.preset)
    check_offline(args.offline)
    check_folder("--run-dir", args.run_dir)
    from qtopt_collector.episode_driver import first_episode_seed
    from qtopt_learner.app.training_graph import run_training_graph

    cells, learner = sim_graph_configs(args, info)
    stats = run_training_graph(cells, learner, args.episodes, Path(cells.out_dir) / "logs",
                               seed=first_episode_seed(args.seed))
    print(f"[qtopt] {stats.episodes} {args.policy} episodes, success label "
          f"{stats.success_rate:.1%}; learner run folder {learner.run_dir}")
    return 0


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="PATH",
                        help="TorchScript model to start from; the cells render the camera "
                        "it was trained with")
    add_run_dir_argument(parser)
    add_offline_argument(parser)
    add_steps_argument(parser, default=30_000)
    parser.add_argument("--episodes", type=positive_int, default=100,
                        help="episodes the cells collect, over all cells")
    add_cells_argument(parser)
    parser.add_argument("--policy", default="noisy", choices=SERVED_POLICIES,
                        help="the cells' policy around the newest model: noisy (pi_noisy, "
                        "App. B) or greedy")
    add_preset_argument(parser)
    add_seed_argument(parser, LEARNER)


CONFIG_COMMANDS = ("run", "train")  # their options, --help included, are a config's (draccus)
# name, help, arguments (None: a config command's), what runs it (checking its arguments first)
COMMANDS = (
    ("run", RUN_HELP, None, _run),
    ("cell", "collect episodes with simulated cells into rosbag2", add_cell_arguments,
     run_cell_command),
    ("sim", "cells + policy node + learner node: on-policy fine-tuning in simulation "
     "(the graph of ros2 launch qtopt_learner sim.launch.py)", add_sim_arguments, _sim),
    ("train", TRAIN_HELP, None, run_train_command),
    ("eval", "evaluate a model and the scripted policy on held-out test objects (Sec. 6.1)",
     add_eval_arguments, run_eval_command),
    ("export", "recorded episodes (rosbag2 bags) as a dataset of another format (LeRobot)",
     add_export_arguments, run_export_command),
)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog=PROG, description=__doc__.split("\n\n")[0],
                           formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of these; qtopt COMMAND --help lists its options")
    for name, help_text, add_arguments, func in COMMANDS:
        command = sub.add_parser(name, help=help_text, description=help_text,
                                 formatter_class=HelpFormatter,
                                 add_help=name not in CONFIG_COMMANDS)
        if add_arguments is not None:
            add_arguments(command)
        command.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, options = parser.parse_known_args(argv)
    if args.command in CONFIG_COMMANDS:
        args.options = options  # draccus parses them, --help included
    elif options:
        parser.error(f"unrecognized arguments: {' '.join(options)}")
    try:
        return args.func(args)
    except UsageError as err:  # bad input found by a command's checks: one line, no traceback
        parser.error(str(err))


if __name__ == "__main__":
    sys.exit(main())
