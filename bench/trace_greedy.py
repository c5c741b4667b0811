"""Probe: what does a model's greedy policy do, step by step? (diagnosis of stalled runs)

Runs ``--episodes`` greedy episodes of a TorchScript model on held-out test objects (the main
job's evaluation cell, simulator truth) and summarizes the behaviour QT-Opt should learn:
descend, close near the floor, lift, stop. Per episode: steps, where the gripper first closed
(height), whether it closed again after opening, the highest point after closing, how it
ended (learned stop, 20 steps), and the truth; then the Q-function's view: Q(s, stop) and the
chosen action's Q at the first state, before closing and after the lift. With ``--verbose``
every step is printed, with Q of the chosen action and of the probe's alternatives (close or
open in place, full descent, full ascent). It also scores Q(s, stop) on scripted episodes'
lifted states and the scripted actions against those alternatives (qtopt_learner.probes), so
one command says whether the value sees a held object and ranks actions within a state.

    .venv/bin/python bench/trace_greedy.py MODEL.pt [--episodes 20] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from qtopt_collector.episode import (
    TERMINATION_HEIGHTS,
    TERMINATIONS,
    EpisodeConfig,
    run_episode,
)
from qtopt_collector.evaluation import scripted_episodes
from qtopt_collector.sim_cell import SimCell
from qtopt_learner.app.main_job_config import CAMERAS, MainJobConfig
from qtopt_learner.probes import (
    ALTERNATIVES,
    action_ranking,
    q_against_alternatives,
    stop_value_auc,
)
from qtopt_policy.episode_record import EpisodeRecord, Termination
from qtopt_policy.model_file import read_model_info, termination_for
from qtopt_policy.policies import greedy_policy
from qtopt_policy.torchscript_model import load_model

EVAL_SEED = 100_000  # the evaluation's seeds, so traces match evaluated attempts


def describe(record: EpisodeRecord) -> dict:
    """The shape of one greedy episode."""
    steps = record.steps
    heights = [s.observation.height_to_bottom for s in steps]
    closes = [i for i, s in enumerate(steps)
              if s.action.gripper_close and not s.observation.gripper_closed]
    first_close = closes[0] if closes else None
    after = heights[first_close:] + [record.final_observation.height_to_bottom] \
        if first_close is not None else []
    return {
        "seed": record.seed, "steps": len(steps), "truth": bool(record.ground_truth),
        "ended": {Termination.LEARNED: "stop", Termination.SCRIPTED: "rule",
                  Termination.MAX_STEPS: "max steps"}[record.termination],
        "close_height": heights[first_close] if first_close is not None else math.nan,
        "closes": len(closes),
        "lift_after_close": max(after) - heights[first_close] if after else math.nan,
        "q_first": steps[0].q_value,
        "q_before_close": steps[first_close].q_value if first_close is not None else math.nan,
        "q_last": steps[-1].q_value,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--probe-episodes", type=int, default=60,
                   help="scripted episodes whose lifted states score Q(s, stop)")
    p.add_argument("--step-penalty", type=float, default=0.0)
    p.add_argument("--termination", default="", choices=list(TERMINATIONS),
                   help="the model's stop action, Algorithm 2 (closed, above 0.13 m, up), or "
                   "the close itself; default: the rule the model records")
    p.add_argument("--termination-height", default="next", choices=list(TERMINATION_HEIGHTS),
                   help="Algorithm 2 reads the action's start state or the state it leads to")
    p.add_argument("--preset", default="sim", choices=sorted(CAMERAS),
                   help="the camera the model was trained with")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--json", type=Path, help="also write the per-episode rows here")
    args = p.parse_args()
    if not args.model.is_file() or args.episodes < 1:
        raise SystemExit(f"trace_greedy: error: model {args.model} / --episodes "
                         f"{args.episodes}: expected a model file and >= 1 episode")
    cell_config = MainJobConfig(run_dir="/tmp", preset=args.preset).sim("test")
    rule = args.termination or termination_for(read_model_info(args.model))
    episode = EpisodeConfig.ending_by(rule, step_penalty=args.step_penalty,
                                      scripted_termination_height=args.termination_height)
    policy = greedy_policy(str(args.model))
    loaded = load_model(str(args.model))
    cell = SimCell(cell_config)
    rows = []
    try:
        for k in range(args.episodes):
            record = run_episode(cell, policy, EVAL_SEED + k, episode)
            rows.append(describe(record))
            if args.verbose:
                q = q_against_alternatives(loaded, [s.observation for s in record.steps],
                                           [s.action for s in record.steps])
                for i, s in enumerate(record.steps):
                    a, o = s.action, s.observation
                    t = ", ".join(f"{x:+.3f}" for x in a.translation)
                    alts = " ".join(f"{x:.3f}" for x in q[i, 1:])
                    print(f"  seed {record.seed} step {i:2d}: h {o.height_to_bottom:.3f} "
                          f"closed {int(o.gripper_closed)} -> t ({t}) close "
                          f"{int(a.gripper_close)} stop {int(a.terminate)} Q {q[i, 0]:.3f}; "
                          f"{' / '.join(ALTERNATIVES)} {alts}")
    finally:
        cell.close()
    print("\n| seed | steps | ended | truth | close at (m) | closes | lift after (m) | Q first | "
          "Q before close | Q last |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['steps']} | {r['ended']} | {int(r['truth'])} | "
              f"{r['close_height']:.3f} | {r['closes']} | {r['lift_after_close']:.3f} | "
              f"{r['q_first']:.3f} | {r['q_before_close']:.3f} | {r['q_last']:.3f} |")
    closed = [r for r in rows if r["closes"]]
    print(f"\n{sum(r['truth'] for r in rows)}/{len(rows)} grasps; mean steps "
          f"{np.mean([r['steps'] for r in rows]):.1f}; {len(closed)} close at all, at "
          f"{np.nanmedian([r['close_height'] for r in closed]) if closed else math.nan:.3f} m "
          f"(median); {sum(r['ended'] == 'stop' for r in rows)} stop by themselves")
    scripted = scripted_episodes(cell_config, episode, args.probe_episodes)
    probe = stop_value_auc(str(args.model), scripted)
    print(f"Q(s, stop) on scripted lifted states: {probe.summary()}")
    ranking = action_ranking(str(args.model), scripted)
    print("\nQ of the scripted action against alternatives, on scripted episodes' states:\n")
    print("| phase | states | Q scripted | its return | " + " | ".join(ALTERNATIVES)
          + " | scripted best | AUC vs truth |")
    print("|---|---|---|---|" + "---|" * len(ALTERNATIVES) + "---|---|")
    for row in ranking:
        print(row.row())
    if args.json:
        args.json.write_text(json.dumps({"episodes": rows, "stop_probe": probe.__dict__,
                                         "action_ranking": [r.__dict__ for r in ranking]},
                                        indent=1))


if __name__ == "__main__":
    main()
