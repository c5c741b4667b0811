#!/usr/bin/env python3
"""Bag bytes and recorder time per episode, with and without the per-step standard topics.

Scripted episodes (App. B) in the main job's sim cell at each preset's camera size, each
recorded four ways like the recorder node does: the Episode message alone
(``step_topics=False``), plus each step's frame as a raw Image (the default), as a JPEG and as a
PNG CompressedImage. Prints a Markdown table: KiB per episode (MCAP files, zstd chunks), the
ratio to the Episode alone, and the recorder's milliseconds per episode (after the first, which
loads the type store). Usage:

    .venv/bin/python bench/bench_bag_size.py [--episodes 10] [--presets sim sim96 paper]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig
from qtopt_collector.episode import run_episode
from qtopt_collector.sim_cell import SimCell
from qtopt_learner.app.main_job_config import CAMERAS, sim_cell
from qtopt_policy.policies import ScriptedGraspPolicy
from qtopt_policy.spec import ActionBounds

# name: RecorderConfig fields over the defaults
WAYS = {"Episode only": dict(step_topics=False),
        "+ steps, raw": dict(step_image_format="raw"),
        "+ steps, JPEG": dict(step_image_format="jpeg"),
        "+ steps, PNG": dict(step_image_format="png")}


def measure(preset: str, episodes: int, seed: int) -> dict:
    """Per way: KiB and recorder ms per episode; plus the mean steps per episode."""
    width, height = CAMERAS[preset]
    # the simulator's label skips the drop test: the bag holds the same messages either way
    cell = SimCell(dataclasses.replace(sim_cell(), camera_width=width, camera_height=height,
                                       label="truth"))
    policy = ScriptedGraspPolicy(ActionBounds())
    with tempfile.TemporaryDirectory(prefix="qtopt_bag_size_") as root:
        recorders = {way: BagRecorder(RecorderConfig(out_dir=f"{root}/{i}", **fields))
                     for i, (way, fields) in enumerate(WAYS.items())}
        seconds = dict.fromkeys(WAYS, 0.0)
        steps = 0
        for i in range(episodes):
            record = run_episode(cell, policy, seed + i)
            steps += len(record.steps)
            for way, recorder in recorders.items():
                start = time.perf_counter()
                recorder.write(record)
                if i:
                    seconds[way] += time.perf_counter() - start
        cell.close()
        sizes = {way: sum(p.stat().st_size for p in Path(f"{root}/{i}").rglob("*.mcap"))
                 for i, way in enumerate(WAYS)}
    return dict(camera=f"{preset} ({width}x{height})", steps=steps / episodes,
                kib={w: sizes[w] / episodes / 1024 for w in WAYS},
                ms={w: 1000 * seconds[w] / max(episodes - 1, 1) for w in WAYS})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=10, help="per camera, >= 2")
    parser.add_argument("--presets", nargs="+", choices=list(CAMERAS), default=list(CAMERAS))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    base, *extra = WAYS
    print("| camera | steps/episode | " + " | ".join(
        [f"{base} KiB"] + [f"{w} KiB (x {base})" for w in extra]) + " | recorder ms "
        f"({' / '.join(WAYS)}) |")
    print("|---" * (3 + len(extra)) + "|---|")
    for preset in args.presets:
        r = measure(preset, args.episodes, args.seed)
        sizes = [f"{r['kib'][base]:.1f}"] + [
            f"{r['kib'][w]:.1f} (x {r['kib'][w] / r['kib'][base]:.2f})" for w in extra]
        times = " / ".join(f"{r['ms'][w]:.1f}" for w in WAYS)
        print(f"| {r['camera']} | {r['steps']:.1f} | {' | '.join(sizes)} | {times} |")


if __name__ == "__main__":
    main()
