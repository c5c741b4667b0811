#!/usr/bin/env python3
"""Sim cell throughput, recorder overhead, bag size, and image-subtraction agreement.

In process (no ROS) on one core: scripted episodes (App. B) on train and held-out test
objects, each recorded to rosbag2 (MCAP) like the recorder node does; the recorder's share of
the wall time is its CPU overhead. Label agreement compares the image-subtraction label with the
simulator's ground truth. A substeps sweep shows what physics resolution costs and changes.
Two processes in parallel give the per-machine rate. Writes a filmstrip PNG. Usage:

    .venv/bin/python bench/bench_collector.py [--episodes 200] [--test-episodes 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig
from qtopt_collector.episode import run_episode
from qtopt_collector.filmstrip import filmstrip
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_policy.policies import ScriptedGraspPolicy
from qtopt_policy.spec import ActionBounds


def collect(config: SimCellConfig, episodes: int, seed: int, record: bool, desc: str,
            keep: int = 0) -> dict:
    cell = SimCell(config)
    policy = ScriptedGraspPolicy(ActionBounds())
    out = tempfile.mkdtemp(prefix="qtopt_bench_")
    recorder = BagRecorder(RecorderConfig(out_dir=out)) if record else None
    labels, truths, steps, kept = [], [], [], []
    episode_time = record_time = 0.0
    for i in tqdm(range(episodes), desc=desc, leave=False):
        start = time.perf_counter()
        ep = run_episode(cell, policy, seed + i)
        episode_time += time.perf_counter() - start
        if recorder is not None:
            start = time.perf_counter()
            recorder.write(ep)
            record_time += time.perf_counter() - start
        labels.append(ep.success)
        truths.append(bool(ep.ground_truth))
        steps.append(len(ep.steps))
        if len(kept) < keep:
            kept.append(ep)
    cell.close()
    bag_bytes = sum(p.stat().st_size for p in Path(out).rglob("*.mcap"))
    return dict(labels=np.array(labels), truths=np.array(truths), steps=np.array(steps),
                episode_time=episode_time, record_time=record_time,
                bag_bytes=bag_bytes / max(episodes, 1), kept=kept)


def _worker(args: tuple[SimCellConfig, int, int]) -> float:
    config, episodes, seed = args
    start = time.perf_counter()
    collect(config, episodes, seed, record=True, desc=f"process {seed}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--test-episodes", type=int, default=100)
    parser.add_argument("--sweep-episodes", type=int, default=60)
    parser.add_argument("--figure", default="docs/figures/sim_cell_filmstrip.png")
    args = parser.parse_args()
    base = SimCellConfig()
    train = collect(base, args.episodes, 10_000, record=True, desc="train objects", keep=3)
    test = collect(dataclasses.replace(base, object_split="test"), args.test_episodes, 20_000,
                   record=True, desc="test objects")
    print(f"\nsim cell {base.camera_width}x{base.camera_height} px, {base.substeps} substeps, "
          f"{base.min_objects}-{base.max_objects} objects, scripted policy (App. B)\n")
    print("| objects | episodes | success (truth) | success (label) | label agreement | "
          "false pos. | false neg. | steps/ep | episodes/h/core | recorder overhead | "
          "bag KiB/ep |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in (("train", train), ("test", test)):
        n = len(r["labels"])
        agree = np.mean(r["labels"] == r["truths"])
        fp = int(np.sum(r["labels"] & ~r["truths"]))
        fn = int(np.sum(~r["labels"] & r["truths"]))
        rate = n / r["episode_time"] * 3600
        overhead = r["record_time"] / (r["episode_time"] + r["record_time"])
        print(f"| {name} | {n} | {r['truths'].mean():.1%} | {r['labels'].mean():.1%} | "
              f"{agree:.1%} | {fp} | {fn} | {r['steps'].mean():.1f} | {rate:.0f} | "
              f"{overhead:.1%} | {r['bag_bytes'] / 1024:.1f} |")
    print("\nsubsteps per action (physics steps of 1/240 s), train objects:\n")
    print("| substeps | episodes | success (truth) | episodes/h/core | x 80-substep rate |")
    print("|---|---|---|---|---|")
    sweep = {}
    for substeps in (40, 80, 120):
        r = collect(dataclasses.replace(base, substeps=substeps), args.sweep_episodes, 30_000,
                    record=False, desc=f"{substeps} substeps")
        sweep[substeps] = (r["truths"].mean(), args.sweep_episodes / r["episode_time"] * 3600)
    for substeps, (success, rate) in sweep.items():
        print(f"| {substeps} | {args.sweep_episodes} | {success:.1%} | {rate:.0f} | "
              f"{rate / sweep[80][1]:.2f} |")
    per = max(args.sweep_episodes // 2, 10)
    with mp.get_context("spawn").Pool(2) as pool:
        start = time.perf_counter()
        pool.map(_worker, [(base, per, 40_000), (base, per, 50_000)])
        wall = time.perf_counter() - start
    print(f"\n2 cells in parallel processes (recording): {2 * per} episodes in {wall:.0f} s = "
          f"{2 * per / wall * 3600:.0f} episodes/h on this machine")
    filmstrip(train["kept"], Path(args.figure))
    print(f"filmstrip: {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
