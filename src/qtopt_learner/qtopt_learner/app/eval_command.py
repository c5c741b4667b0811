"""``qtopt eval``: a model and the scripted policy on held-out test objects under both
protocols of Sec. 6.1 (grasps with replacement; bin emptying), every policy on the same seeds
in the main job's evaluation cell, rendering the camera the model was trained with. Prints the
policy table (success with its Wilson interval) and the model's margin over the scripted
policy with Newcombe's interval.

With ``--out DIR``, attempts are logged to ``DIR/attempts.jsonl`` as they finish, so a rerun
into the same folder continues an interrupted evaluation without running them again; the
results go to ``DIR/results.json`` and the table to ``DIR/table.md``.

The parser and the checks import nothing heavy (:mod:`qtopt_learner.app.cli`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from qtopt_collector.ros.cli import sim_for_model
from qtopt_learner.app.ablations import CHOICES, AblationConfig
from qtopt_learner.app.budgets import BUDGETS
from qtopt_policy.config_fields import Bounds, field_description
from qtopt_policy.names import (
    DEFAULT_TERMINATION,
    LOCAL_POLICIES,
    SEEDS_PER_RUN,
    UNRECORDED_TERMINATION,
)
from qtopt_policy.usage import (
    ValueType,
    check_folder,
    check_model,
    config_field_type,
    positive_int,
)

MAIN_JOB = "qtopt_learner.app.main_job_config:MainJobConfig"
SCRIPTED = "scripted"  # the baseline every model is compared with
# The long CPU budget's attempts: 200 grasps decide a comparison with the scripted policy.
DEFAULTS = BUDGETS["2h"]


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="PATH",
                        help="TorchScript model to evaluate beside the scripted policy (the "
                        "cell renders the camera it was trained with), or the name of a "
                        f"local policy ({', '.join(LOCAL_POLICIES)}) to evaluate alone")
    parser.add_argument("--attempts", type=positive_int, default=DEFAULTS.eval_attempts,
                        help="grasps with replacement per policy (protocol 1), each on a "
                        "freshly seeded bin")
    parser.add_argument("--bins", type=ValueType(int, Bounds(low=0)), default=1,
                        help="bins emptied per policy (protocol 2); 0: none")
    parser.add_argument("--bin-objects", type=config_field_type(MAIN_JOB, "bin_objects"),
                        default=28, help="objects in each emptied bin (Sec. 6.1)")
    parser.add_argument("--bin-attempts", type=positive_int, default=DEFAULTS.bin_attempts,
                        help="grasps without replacement per bin; the table reports success "
                        "over the first 10, 20 and 30")
    parser.add_argument("--workers", type=config_field_type(MAIN_JOB, "eval_workers"),
                        default=2, help="processes running the grasp attempts")
    parser.add_argument("--seed", type=ValueType(int, Bounds(low=0)), default=0,
                        help="the evaluation's seed: every policy runs the attempts of the "
                        "same seeds, which no other --seed shares; 0: those of the main job's "
                        "evaluation")
    termination = {f.name: f for f in dataclasses.fields(AblationConfig)}["termination"]
    parser.add_argument("--termination", default="", choices=CHOICES["termination"],
                        help=field_description(AblationConfig, termination) + "; default: "
                        "the rule the model was trained under, as its metadata records "
                        f"({UNRECORDED_TERMINATION} when it records none; "
                        f"{DEFAULT_TERMINATION} for a local policy)")
    parser.add_argument("--out", default="", metavar="DIR",
                        help="folder for attempts.jsonl, results.json and table.md; an "
                        "existing one continues: attempts logged there are not run again")


def run_eval_command(args: argparse.Namespace) -> int:
    local = args.model in LOCAL_POLICIES
    info = None if local else check_model("--model", args.model)
    check_folder("--out", args.out)
    from qtopt_collector.evaluation import (
        BIN_SEED,
        GRASP_SEED,
        AttemptLog,
        bin_emptying,
        difference_interval,
        evaluate,
    )
    from qtopt_learner.app.main_job_config import MainJobConfig
    from qtopt_learner.app.report import margin_summary, policy_table
    from qtopt_learner.app.run_record import PolicyRecord, policy_to_json
    from qtopt_policy.model_file import termination_for
    from qtopt_policy.policies import PolicySource

    # the main job's evaluation cell, showing the model the view it learned from
    sim = sim_for_model(MainJobConfig(run_dir="", preset=info.preset if info else "sim")
                        .sim("test"), info)
    termination = args.termination or termination_for(info)
    episode = AblationConfig(termination=termination).episode
    sources = {args.model: PolicySource(local=args.model) if local
               else PolicySource(model_path=str(Path(args.model).resolve()))}
    sources.setdefault(SCRIPTED, PolicySource(local=SCRIPTED))
    seeds = {"grasps": GRASP_SEED + args.seed * SEEDS_PER_RUN,
             "bins": BIN_SEED + args.seed * SEEDS_PER_RUN}
    out = Path(args.out) if args.out else None
    log = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        log = AttemptLog(out / "attempts.jsonl")
        if log.path.exists():
            print(f"[qtopt] resuming: attempts already in {log.path} are not run again",
                  flush=True)
    bins_text = (f" and {args.bins} bin(s) of {args.bin_objects} objects emptied over "
                 f"{args.bin_attempts} attempts (seeds from {seeds['bins']})")
    print(f"[qtopt] {' and '.join(sources)} on held-out test objects (Sec. 6.1): "
          f"{args.attempts} grasps with replacement (seeds from {seeds['grasps']})"
          f"{bins_text if args.bins else ''} per policy; camera {sim.camera().describe()}; "
          f"episodes end by the {termination} rule",
          flush=True)
    records = {}
    for name, source in sources.items():
        grasps = evaluate(source, args.attempts, seed=seeds["grasps"], workers=args.workers,
                          cell_config=sim, episode_config=episode, log=log)
        bins = bin_emptying(source, objects=args.bin_objects, attempts=args.bin_attempts,
                            bins=args.bins, seed=seeds["bins"], workers=args.workers,
                            cell_config=sim, episode_config=episode,
                            log=log) if args.bins else None
        print(f"[qtopt] {grasps.summary()}" + (f"\n[qtopt] {bins.summary()}" if bins else ""),
              flush=True)
        records[name] = PolicyRecord.of(grasps, bins)
    lines, margin = policy_table(records), None
    if args.model != SCRIPTED:  # the model's margin over the scripted baseline
        model, scripted = records[args.model].grasps, records[SCRIPTED].grasps
        lines += ["", margin_summary(args.model if local else f"The model {args.model}",
                                     model, scripted)]
        margin = dict(zip(("difference", "low", "high"), difference_interval(
            model.successes, model.attempts, scripted.successes, scripted.attempts),
            strict=True))
    table = "\n".join(lines) + "\n"
    print(f"\n{table}", end="", flush=True)
    if out is not None:
        results = {"model": args.model, "seed": args.seed, "first_seeds": seeds,
                   "policies": {name: policy_to_json(r) for name, r in records.items()},
                   "margin": margin, "cell": dataclasses.asdict(sim),
                   "episode": dataclasses.asdict(episode)}
        (out / "results.json").write_text(json.dumps(results, indent=2))
        (out / "table.md").write_text(table)
        print(f"[qtopt] results: {out / 'results.json'}, {out / 'table.md'}")
    return 0
