"""Keep a finished main-job run's final export as the repository's reference sim model (issue
15): ``models/sim_reference.pt`` and, beside it, ``models/sim_reference.json`` with the command
that made it, its commit, budget and measured numbers, so a user can try a trained policy
without the long run (`qtopt eval --model models/sim_reference.pt`).

    bench/save_reference_model.py runs/main14 [--out models]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from qtopt_collector.evaluation import EvalResult, difference_interval
from qtopt_learner.app.main_job_config import MainJobConfig
from qtopt_learner.app.run_layout import RunLayout
from qtopt_learner.app.run_record import RunRecord
from qtopt_policy.config_files import load_config
from qtopt_policy.torchscript_model import export_model, load_weights, weights_path

ROOT = Path(__file__).resolve().parents[1]
NAME = "sim_reference"


# Named even when it is the default: the default rule changed (docs/decisions.md), and the
# command must rerun the model at its recorded commit too.
ALWAYS_NAMED = {"ablation.termination"}


def command_of(config: MainJobConfig) -> str:
    """The README command that reruns ``config``: its options that differ from the defaults,
    and those in ``ALWAYS_NAMED``."""
    options = []
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), getattr(MainJobConfig(), f.name)
        if f.name == "run_dir":
            continue
        if dataclasses.is_dataclass(value):
            options += [f"--{f.name}.{g.name} {getattr(value, g.name)}"
                        for g in dataclasses.fields(value)
                        if getattr(value, g.name) != getattr(default, g.name)
                        or f"{f.name}.{g.name}" in ALWAYS_NAMED]
        elif value != default:
            options.append(f"--{f.name} {value}")
    return " ".join(["./scripts/run_main.sh", *options])


def grasps_json(result: EvalResult) -> dict[str, Any]:
    low, high = result.interval
    return {"successes": result.successes, "attempts": result.attempts,
            "rate": round(result.rate, 4), "wilson_95": [round(low, 4), round(high, 4)],
            "mean_steps": round(result.mean_steps, 2)}


def commit_of(run: Path) -> str:
    """The commit a frozen run (bench/run_frozen.sh) ran, else this checkout's."""
    frozen = run / "code" / "COMMIT"
    if frozen.exists():
        return frozen.read_text().strip()
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def metadata(run: Path, config: MainJobConfig, record: RunRecord, sha256: str) -> dict:
    learned = record.evaluation.policies["learned"].grasps
    scripted = record.evaluation.policies["scripted"].grasps
    margin, low, high = difference_interval(learned.successes, learned.attempts,
                                            scripted.successes, scripted.attempts)
    return {
        "model": f"{NAME}.pt",
        "sha256": sha256,
        "command": command_of(config),
        "commit": commit_of(run),
        "budget": config.budget,
        "preset": config.preset,
        "termination": config.ablation.termination,
        "seed": config.seed,
        "training_step": record.train.step,
        "episodes": record.train.episodes,
        "seconds": record.timings(),  # of the phases' last runs
        "resumed_with": record.train.resumed_with,  # episodes before training's last run
        "held_out": {"learned": grasps_json(learned), "scripted": grasps_json(scripted),
                     "margin": round(margin, 4),
                     "margin_newcombe_95": [round(low, 4), round(high, 4)]},
        "evaluate": f"qtopt eval --model models/{NAME}.pt",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="a main-job run folder whose evaluation finished")
    p.add_argument("--out", type=Path, default=ROOT / "models")
    args = p.parse_args(argv)
    layout = RunLayout(args.run_dir.resolve())
    record = RunRecord.load(layout.record)
    if record.train is None or record.evaluation is None:
        print(f"run folder {args.run_dir}: expected a run whose evaluation finished "
              f"({layout.record} lacks it)", file=sys.stderr)
        return 2
    config = load_config(MainJobConfig, layout.config)
    model = layout.learner.model_at(record.train.step)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{NAME}.pt"
    # The export's own weights, written again with the rule its episodes ended by (exports
    # from before the field record none), so `qtopt eval` runs it under that rule by default.
    weights = load_weights(weights_path(model))
    sha256 = export_model(weights.network, target, dataclasses.replace(
        weights.metadata, termination=config.ablation.termination))
    weights_path(target).unlink()  # the repository tracks the one TorchScript file
    info = metadata(layout.root, config, record, sha256)
    (args.out / f"{NAME}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
