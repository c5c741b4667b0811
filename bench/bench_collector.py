#!/usr/bin/env python3
"""Sim cell throughput, recorder overhead, bag size, and image-subtraction agreement.

In process (no ROS) on one core: scripted episodes (App. B) on train and held-out test
objects, each recorded to rosbag2 (MCAP) like the recorder node does; the recorder's share of
the wall time is its CPU overhead. Label agreement compares the image-subtraction label with the
simulator's ground truth. A substeps sweep shows what physics resolution costs and changes.
Two processes in parallel give the per-machine rate. Writes a filmstrip PNG.

Episode cost variants, each on 2 cells in parallel processes (in process, no ROS, not
recorded) with the same seeds, against today's path measured in the same run: the bin rebuilt
every episode and labeled by the drop test (App. D.3) at 80 substeps; the bin kept for 10
episodes (the paper's protocol, App. C); plus the simulator's truth as the label; plus 40
substeps. ``--success-episodes N`` also runs N episodes per variant for its scripted grasp
success (the 40 vs 80 substeps re-check wants N >= 300). Usage:

    .venv/bin/python bench/bench_collector.py [--episodes 200] [--test-episodes 100]
    .venv/bin/python bench/bench_collector.py --variants-only [--variant-episodes 60] \
        [--success-episodes 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import tempfile
import time
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig
from qtopt_collector.episode import run_episode
from qtopt_collector.filmstrip import filmstrip
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_policy.policies import ScriptedGraspPolicy
from qtopt_policy.spec import ActionBounds

CELLS = 2  # parallel cells (one process each) for the per-machine rates
# Episode cost variants, SimCellConfig fields over the defaults; "today" is the reference.
VARIANTS: dict[str, dict[str, int | str | bool]] = {
    "today": dict(respawn_every=1, label="detector", substeps=80),
    "respawn": dict(respawn_every=10, label="detector", substeps=80),
    "respawn + truth": dict(respawn_every=10, label="truth", substeps=80),
    "respawn + truth + 40 substeps": dict(respawn_every=10, label="truth", substeps=40),
    "... + no restart settle": dict(respawn_every=10, label="truth", substeps=40,
                                    restart_settle=False),
}


def collect(config: SimCellConfig, episodes: int, seed: int, record: bool, desc: str,
            keep: int = 0, progress: bool = True) -> dict:
    cell = SimCell(config)
    policy = ScriptedGraspPolicy(ActionBounds())
    out = tempfile.mkdtemp(prefix="qtopt_bench_")
    recorder = BagRecorder(RecorderConfig(out_dir=out)) if record else None
    labels, truths, steps, kept = [], [], [], []
    episode_time = record_time = 0.0
    for i in tqdm(range(episodes), desc=desc, leave=False, disable=not progress):
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


def _warm_up(_: int) -> None:
    """Occupy a pool worker briefly, so every worker has started before a timed map."""
    SimCell().close()
    time.sleep(1.0)


def _labels_worker(args: tuple[SimCellConfig, int, int]) -> tuple[np.ndarray, np.ndarray]:
    config, episodes, seed = args
    r = collect(config, episodes, seed, record=False, desc="", progress=False)
    return r["labels"], r["truths"]


def run_on_cells(pool: Pool, config: SimCellConfig, episodes_per_cell: int,
                 seed: int) -> dict:
    """``episodes_per_cell`` scripted episodes on each of CELLS cells at once; the wall time
    covers the pair, so episodes / wall is the machine's rate."""
    start = time.perf_counter()
    parts = pool.map(_labels_worker, [(config, episodes_per_cell, seed + 1_000_000 * k)
                                      for k in range(CELLS)], chunksize=1)
    wall = time.perf_counter() - start
    return dict(labels=np.concatenate([p[0] for p in parts]),
                truths=np.concatenate([p[1] for p in parts]), wall=wall)


def compare_variants(base: SimCellConfig, episodes_per_cell: int, success_episodes: int
                     ) -> None:
    """Print episodes per hour on CELLS cells for each variant and its ratio to today's path;
    with ``success_episodes``, each variant's scripted success on that many episodes."""
    configs = {name: dataclasses.replace(base, **fields) for name, fields in VARIANTS.items()}
    with mp.get_context("spawn").Pool(CELLS) as pool:
        pool.map(_warm_up, range(CELLS), chunksize=1)
        rates = {name: run_on_cells(pool, c, episodes_per_cell, 60_000)
                 for name, c in tqdm(configs.items(), desc="variants", leave=False)}
        per_cell = max(success_episodes // CELLS, 1)
        success = {name: run_on_cells(pool, c, per_cell, 70_000)
                   for name, c in tqdm(configs.items(), desc="success", leave=False)
                   } if success_episodes else {}
    today = CELLS * episodes_per_cell / rates["today"]["wall"] * 3600
    print(f"\nepisode cost, {CELLS} cells in parallel processes (in process, no ROS, not "
          f"recorded), {base.min_objects}-{base.max_objects} train objects, scripted policy "
          f"(App. B), {episodes_per_cell} episodes per cell:\n")
    print(f"| variant | respawn_every | label | substeps | restart settle | s/episode/cell | "
          f"episodes/h ({CELLS} cells) | x today |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rates.items():
        c, rate = configs[name], CELLS * episodes_per_cell / r["wall"] * 3600
        print(f"| {name} | {c.respawn_every} | {c.label} | {c.substeps} | "
              f"{'yes' if c.restart_settle else 'no'} | {r['wall'] / episodes_per_cell:.2f} | "
              f"{rate:.0f} | {rate / today:.2f} |")
    if not success:
        return
    print(f"\nscripted grasp success per variant, {CELLS * per_cell} episodes each:\n")
    print("| variant | episodes | success (truth) | success (label) | label agreement |")
    print("|---|---|---|---|---|")
    for name, r in success.items():
        print(f"| {name} | {len(r['labels'])} | {r['truths'].mean():.1%} | "
              f"{r['labels'].mean():.1%} | {np.mean(r['labels'] == r['truths']):.1%} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--test-episodes", type=int, default=100)
    parser.add_argument("--sweep-episodes", type=int, default=60)
    parser.add_argument("--figure", default="docs/figures/sim_cell_filmstrip.png")
    parser.add_argument("--variant-episodes", type=int, default=60,
                        help="episodes per cell for each episode cost variant")
    parser.add_argument("--success-episodes", type=int, default=0,
                        help="also measure each variant's scripted success on N episodes")
    parser.add_argument("--variants-only", action="store_true",
                        help="only the episode cost variants")
    args = parser.parse_args()
    base = SimCellConfig()
    if args.variants_only:
        compare_variants(base, args.variant_episodes, args.success_episodes)
        return 0
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
    compare_variants(base, args.variant_episodes, args.success_episodes)
    filmstrip(train["kept"], Path(args.figure))
    print(f"filmstrip: {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
