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
from typing import NoReturn

from qtopt_collector.ros.cli import add_cell_arguments, run_cell_command
from qtopt_learner.app.ablations import CHOICES, AblationConfig
from qtopt_learner.app.budgets import BUDGETS
from qtopt_learner.app.input_checks import check_offline, check_same_config
from qtopt_learner.app.train_command import add_train_arguments, run_train_command
from qtopt_policy.names import ENGINES, LABELS, PRESET_NAMES, SERVED_POLICIES
from qtopt_policy.usage import (
    HelpFormatter,
    UsageError,
    check_folder,
    check_model,
    non_negative_int,
    positive_int,
    probability,
)

PROG = "qtopt"
ABLATION_HELP = {
    "state": "inputs beside the image: gripper status and height (App. A, C)",
    "reward": "discount: gamma 0.9 alone; penalty: also -0.05 per step (Table 7)",
    "termination": "learned: the policy's terminate action; scripted: Algorithm 2",
    "target": "clipped_double_q: the minimum of two target networks; double_q: Q_bar_1 alone",
    "bound": "monte_carlo: raise each Bellman target to the transition's discounted return "
             "(not in the paper)",
}


class CommandParser(argparse.ArgumentParser):
    """Errors as one line, ``qtopt: error: --flag value: what was expected``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        # argparse words it "argument --episodes: -3: expected ..."; the flag leads, as in the
        # commands' own checks ("--model x.pt: ...").
        message = re.sub(r"^argument (\S+): ", r"\1 ", message).replace("\n", " ")
        self.exit(2, f"{PROG}: error: {message}\n")


def _run(args: argparse.Namespace) -> int:
    check_offline(args.offline)
    check_folder("--run-dir", args.run_dir)
    from qtopt_collector.sim_cell import MAX_BIN_OBJECTS
    from qtopt_learner.app.main_job import MainJob, MainJobConfig
    from qtopt_learner.app.run_layout import RunLayout

    if args.bin_objects > MAX_BIN_OBJECTS:
        raise UsageError(f"--bin-objects {args.bin_objects}: expected at most "
                         f"{MAX_BIN_OBJECTS}, what a simulated bin holds")
    run_dir = args.run_dir or f"runs/main__{args.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    config = MainJobConfig(
        run_dir=run_dir, budget=args.budget, preset=args.preset, cells=args.cells,
        engine=args.engine, seed=args.seed, offline_data=tuple(args.offline),
        label=args.label, learned_share=args.learned_share, bin_objects=args.bin_objects,
        eval_workers=args.eval_workers,
        ablation=AblationConfig(**{name: getattr(args, name) for name in CHOICES}))
    check_same_config(RunLayout(Path(run_dir).resolve()).config, dataclasses.asdict(config),
                      ignore=("run_dir",),
                      defaults=dataclasses.asdict(MainJobConfig(run_dir=run_dir)))
    plan = config.plan
    print(f"[qtopt] QT-Opt in simulation, budget {config.budget}: {plan.episodes} episodes "
          f"collected on {config.num_cells} cells while the learner trains up to "
          f"{plan.steps} steps, then evaluation; run folder {run_dir}", flush=True)
    started = time.monotonic()
    report = MainJob(config).run_all()
    print(f"[qtopt] done in {time.monotonic() - started:.0f} s; report: {report}")
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", default="15m", choices=sorted(BUDGETS),
                        help="how much to collect, train and evaluate (15m: 2 CPU cores, "
                        "about 15 minutes; 2h: the long CPU run; gpu: a GPU and more cores; "
                        "smoke: a few of everything)")
    parser.add_argument("--preset", default="sim", choices=PRESET_NAMES,
                        help="Q-network and trainer preset (paper: 472 px, wants a GPU)")
    parser.add_argument("--cells", type=non_negative_int, default=0,
                        help="simulated cells; 0: the budget's number (2 on a CPU budget)")
    parser.add_argument("--engine", default="inprocess", choices=ENGINES,
                        help="the learner's engine: threads in its node, or Ray actors")
    parser.add_argument("--label", default="truth", choices=LABELS,
                        help="training label: simulator truth or image subtraction (detector)")
    parser.add_argument("--learned-share", type=probability, default=0.5,
                        help="share of pi_noisy episodes once the learned policy joins")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the networks, the cells' episodes and the evaluation")
    parser.add_argument("--run-dir", default="",
                        help="default runs/main__<seed>__<time>; an existing one resumes (with "
                        "the options it was started with)")
    parser.add_argument("--offline", nargs="*", default=[], metavar="PATH",
                        help="bags or folders of bags replayed beside the live episodes")
    parser.add_argument("--bin-objects", type=positive_int, default=28,
                        help="objects in the bin-emptying evaluation (Sec. 6.1)")
    parser.add_argument("--eval-workers", type=positive_int, default=2,
                        help="processes running the evaluation's grasp attempts")
    ablations = parser.add_argument_group("ablations (App. A/C)")
    defaults = AblationConfig()
    for name, choices in CHOICES.items():
        ablations.add_argument(f"--{name}", default=getattr(defaults, name), choices=choices,
                               help=ABLATION_HELP[name])


def _sim(args: argparse.Namespace) -> int:
    """qtopt_learner's sim.launch.py graph through the project's runner (no ``ros2 launch``
    here)."""
    check_model("--model", args.model, preset=args.preset)
    check_offline(args.offline)
    check_folder("--run-dir", args.run_dir)
    from qtopt_collector.graph import CellGraphConfig
    from qtopt_collector.sim_cell import SimCellConfig
    from qtopt_learner.app.training_graph import run_training_graph
    from qtopt_learner.distributed.fine_tuning import FineTuningConfig
    from qtopt_learner.learner_config import learner_preset

    run = Path(args.run_dir).resolve()
    model = str(Path(args.model).resolve())
    sim = SimCellConfig().for_model(model)  # the camera the model was trained with
    learner = learner_preset(args.preset, run_dir=str(run), steps=args.steps,
                             offline_paths=tuple(str(Path(p).resolve()) for p in args.offline),
                             fine_tuning=FineTuningConfig(enabled=True), camera=sim.camera(),
                             label_source=sim.label)
    cells = CellGraphConfig(cells=args.cells, policy=args.policy, model_path=model,
                            out_dir=str(run / "online_cells"), sim=sim)
    stats = run_training_graph(cells, learner, args.episodes, run / "online_cells" / "logs",
                               seed=args.seed)
    print(f"[qtopt] {stats.episodes} {args.policy} episodes, success label "
          f"{stats.success_rate:.1%}; learner run folder {run}")
    return 0


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="PATH",
                        help="TorchScript model to start from; the cells render the camera "
                        "it was trained with")
    parser.add_argument("--run-dir", required=True, help="learner run folder (resumed)")
    parser.add_argument("--offline", nargs="*", default=[], metavar="PATH",
                        help="bags or folders of bags replayed next to the live episodes")
    parser.add_argument("--steps", type=positive_int, default=30_000,
                        help="gradient steps to reach")
    parser.add_argument("--episodes", type=positive_int, default=100,
                        help="episodes the cells collect, over all cells")
    parser.add_argument("--cells", type=positive_int, default=2, help="simulated cells")
    parser.add_argument("--policy", default="noisy", choices=SERVED_POLICIES,
                        help="the cells' policy around the newest model: noisy (pi_noisy, "
                        "App. B) or greedy")
    parser.add_argument("--preset", default="sim", choices=PRESET_NAMES,
                        help="Q-network and trainer preset; --model must be one of it")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the first episode and of the learner")


# name, help, arguments, what runs it (checking its arguments first)
COMMANDS = (
    ("run", "the main job: collect while training, evaluate, report (simulation)",
     add_run_arguments, _run),
    ("cell", "collect episodes with simulated cells into rosbag2", add_cell_arguments,
     run_cell_command),
    ("sim", "cells + policy node + learner node: on-policy fine-tuning in simulation "
     "(the graph of ros2 launch qtopt_learner sim.launch.py)", add_sim_arguments, _sim),
    ("train", "train off-policy from rosbag2 bags", add_train_arguments, run_train_command),
)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog=PROG, description=__doc__.split("\n\n")[0],
                           formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of these; qtopt COMMAND --help lists its options")
    for name, help_text, add_arguments, func in COMMANDS:
        command = sub.add_parser(name, help=help_text, description=help_text,
                                 formatter_class=HelpFormatter)
        add_arguments(command)
        command.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:  # bad input found by a command's checks: one line, no traceback
        parser.error(str(err))


if __name__ == "__main__":
    sys.exit(main())
