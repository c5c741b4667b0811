#!/usr/bin/env python3
"""Learner throughput: gradient steps/s and Bellman targets/s for the ``sim`` preset,
in-process (threads) vs Ray actors with N updaters, and replay memory for 100k transitions.

Each configuration trains from the same bags for a warm-up and then a measured window; rates
come from the measured window only. The in-process single-updater run is the reference the
other rows are compared to. Usage:

    .venv/bin/python bench/bench_learner.py --data BAGS [--steps 600] [--warmup 100]

Without --data, 60 scripted episodes are collected into a temporary folder first.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import numpy as np
from tqdm import tqdm

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig
from qtopt_collector.episode import run_episode
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_learner.distributed.engine import make_learner
from qtopt_learner.distributed.log_replay import episode_files, read_episode_file
from qtopt_learner.distributed.replay import EpisodeReplay, ReplayConfig
from qtopt_learner.learner_config import LearnerConfig
from qtopt_policy.policies import ScriptedGraspPolicy
from qtopt_policy.spec import ActionBounds


def collect(episodes: int) -> str:
    out = tempfile.mkdtemp(prefix="qtopt_bench_learner_")
    cell, policy = SimCell(SimCellConfig()), ScriptedGraspPolicy(ActionBounds())
    recorder = BagRecorder(RecorderConfig(out_dir=out))
    for i in tqdm(range(episodes), desc="collect", leave=False):
        recorder.write(run_episode(cell, policy, 1000 + i))
    cell.close()
    return out


def measure(config: LearnerConfig, warmup: int, steps: int) -> dict[str, float]:
    with make_learner(config, progress=False) as learner:
        learner.train(steps=warmup)
        before = learner.hub.ring_stats()
        start = time.perf_counter()
        learner.train(steps=warmup + steps)
        wall = time.perf_counter() - start
        after = learner.hub.ring_stats()
        history = learner.history
    lags = [h.metrics.target_lag for h in history if h.step > warmup]
    written = after.written - before.written
    sampled = after.sampled - before.sampled
    return {"steps_per_s": steps / wall, "targets_per_s": written / wall,
            "reuse": sampled / max(written, 1), "lag": float(np.mean(lags)) if lags else 0.0}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def replay_memory(data: str, transitions: int) -> tuple[float, float, int]:
    """An offline buffer filled to ``transitions`` by cycling the bags: the bytes it counts and
    the growth of this process's resident memory while it filled."""
    episodes = [e for f in episode_files([data]) for e in read_episode_file(f)]
    before = rss_bytes()
    buffer = EpisodeReplay("offline", ReplayConfig(capacity_transitions=transitions))
    i = 0
    while buffer.transitions_added < transitions:
        buffer.add(episodes[i % len(episodes)])
        i += 1
    return buffer.nbytes / 1024**3, (rss_bytes() - before) / 1024**3, buffer.transitions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--memory-transitions", type=int, default=100_000)
    args = parser.parse_args()
    data = args.data or collect(60)
    rows = [("inprocess", 1), ("inprocess", 2), ("ray", 1), ("ray", 2)]
    results = {}
    for engine, updaters in rows:
        if engine == "ray":
            # one local Ray for both rows
            from qtopt_learner.distributed.ray_engine import init_ray
            init_ray(num_cpus=max(r[1] for r in rows) + 1)
        config = LearnerConfig(run_dir=tempfile.mkdtemp(prefix="qtopt_bench_run_"),
                               offline_paths=(data,), engine=engine, updaters=updaters,
                               torch_threads=1, checkpoint_every=10**9, export_every=10**9)
        results[(engine, updaters)] = measure(config, args.warmup, args.steps)
        print(f"{engine} x{updaters}: {results[(engine, updaters)]}", flush=True)
    reference = results[("inprocess", 1)]["steps_per_s"]
    print(f"\nsim preset, batch 32, {args.steps} measured steps after {args.warmup} warm-up, "
          f"torch threads 1 per worker\n")
    print("| engine | updaters | gradient steps/s | Bellman targets/s | label reuse | "
          "mean target lag (steps) | x in-process 1 updater |")
    print("|---|---|---|---|---|---|---|")
    for (engine, updaters), r in results.items():
        print(f"| {engine} | {updaters} | {r['steps_per_s']:.1f} | {r['targets_per_s']:.0f} | "
              f"{r['reuse']:.2f} | {r['lag']:.0f} | {r['steps_per_s'] / reference:.2f} |")
    gib, rss, held = replay_memory(data, args.memory_transitions)
    print(f"\nreplay: {held} transitions held in {gib:.2f} GiB of frames and arrays "
          f"(uint8, s' shared); resident memory grew {rss:.2f} GiB while filling")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
