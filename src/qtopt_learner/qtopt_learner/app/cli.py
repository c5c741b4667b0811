"""The ``qtopt`` command: the project's main job and its tools."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from qtopt_collector.ros.cli import add_cell_arguments, run_cell_command
from qtopt_learner.app.train_command import add_train_arguments, run_train_command
from qtopt_policy.qnetwork import PRESETS


def _run(args: argparse.Namespace) -> int:
    from qtopt_learner.app.ablations import AblationConfig
    from qtopt_learner.app.main_job import MainJob, MainJobConfig

    run_dir = args.run_dir or f"runs/main__{args.seed}__{time.strftime('%Y%m%d-%H%M%S')}"
    config = MainJobConfig(
        run_dir=run_dir, budget=args.budget, preset=args.preset, cells=args.cells,
        engine=args.engine, seed=args.seed, offline_data=tuple(args.offline),
        label=args.label, learned_share=args.learned_share, bin_objects=args.bin_objects,
        eval_workers=args.eval_workers,
        ablation=AblationConfig(state=args.state, reward=args.reward,
                                termination=args.termination, target=args.target,
                                bound=args.bound))
    plan = config.plan
    print(f"[qtopt] QT-Opt in simulation, budget {config.budget}: {plan.episodes} episodes "
          f"collected on {config.num_cells} cells while the learner trains up to "
          f"{plan.steps} steps, then evaluation; run folder {run_dir}", flush=True)
    started = time.monotonic()
    report = MainJob(config).run_all()
    print(f"[qtopt] done in {time.monotonic() - started:.0f} s; report: {report}")
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    from qtopt_learner.app.ablations import STATES
    from qtopt_learner.app.budgets import BUDGETS

    parser.add_argument("--budget", default="15m", choices=sorted(BUDGETS),
                        help="how much to collect, train and evaluate (15m: 2 CPU cores, "
                        "about 15 minutes; 2h: the long CPU run; gpu: a GPU and more cores)")
    parser.add_argument("--preset", default="sim", choices=sorted(PRESETS),
                        help="Q-network and trainer preset (paper: 472 px, wants a GPU)")
    parser.add_argument("--cells", type=int, default=0,
                        help="simulated cells (default: the budget's, 2 on a CPU budget)")
    parser.add_argument("--engine", default="inprocess", choices=["inprocess", "ray"],
                        help="the learner's engine: threads in its node, or Ray actors")
    parser.add_argument("--label", default="truth", choices=["truth", "detector"],
                        help="training label: simulator truth or image subtraction")
    parser.add_argument("--learned-share", type=float, default=0.5,
                        help="share of pi_noisy episodes once the learned policy joins")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default="",
                        help="default runs/main__<seed>__<time>; an existing one resumes")
    parser.add_argument("--offline", nargs="*", default=[], metavar="PATH",
                        help="bags replayed beside the live episodes")
    parser.add_argument("--bin-objects", type=int, default=28)
    parser.add_argument("--eval-workers", type=int, default=2)
    ablations = parser.add_argument_group("ablations (App. A/C)")
    ablations.add_argument("--state", default="image+gripper+height", choices=list(STATES))
    ablations.add_argument("--reward", default="discount", choices=["penalty", "discount"])
    ablations.add_argument("--termination", default="learned", choices=["learned", "scripted"])
    ablations.add_argument("--target", default="clipped_double_q",
                           choices=["clipped_double_q", "double_q"])
    ablations.add_argument("--bound", default="none", choices=["none", "monte_carlo"],
                           help="monte_carlo: raise each Bellman target to the transition's "
                           "discounted return (not in the paper)")


def _sim(args: argparse.Namespace) -> int:
    """launch/sim.launch.py's graph through the project's runner (no ``ros2 launch`` here)."""
    from qtopt_collector.graph import CellGraphConfig
    from qtopt_learner.app.training_graph import run_training_graph, sim_for_model
    from qtopt_learner.distributed.fine_tuning import FineTuningConfig
    from qtopt_learner.learner_config import learner_preset

    run = Path(args.run_dir).resolve()
    model = str(Path(args.model).resolve())
    sim = sim_for_model(model)  # the camera the model was trained with
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
    parser.add_argument("--model", required=True, help="TorchScript model to start from")
    parser.add_argument("--run-dir", required=True, help="learner run folder (resumed)")
    parser.add_argument("--offline", nargs="*", default=[], metavar="PATH",
                        help="bags replayed next to the live episodes")
    parser.add_argument("--steps", type=int, default=30_000, help="gradient steps to reach")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--cells", type=int, default=2)
    parser.add_argument("--policy", default="noisy", choices=["noisy", "greedy"])
    parser.add_argument("--preset", default="sim", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)


# name, help, arguments, what runs it
COMMANDS = (
    ("run", "the main job: collect while training, evaluate, report (simulation)",
     add_run_arguments, _run),
    ("cell", "collect episodes with simulated cells into rosbag2", add_cell_arguments,
     run_cell_command),
    ("sim", "cells + policy node + learner node: on-policy fine-tuning in simulation "
     "(launch/sim.launch.py's graph)", add_sim_arguments, _sim),
    ("train", "train off-policy from rosbag2 bags", add_train_arguments, run_train_command),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qtopt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text, add_arguments, func in COMMANDS:
        command = sub.add_parser(name, help=help_text)
        add_arguments(command)
        command.set_defaults(func=func)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
