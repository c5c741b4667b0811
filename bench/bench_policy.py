#!/usr/bin/env python3
"""CEM action selection and Bellman-target throughput, batched vs a per-sample reference.

For each preset, eager and TorchScript:
- action selection: one state, CEM 64 x 2 (Sec. 4.2), latency p50 / p99;
- Bellman targets: batches of 32 next states, V(s') = min_i Q_bar_i(s', argmax_a Q_bar_1) with
  two target networks, in targets per second;
- reference: the same CEM, but each candidate action is scored by a full forward pass of its
  own (image tower included), looping over states and samples one by one as public ports do.
All measured in the same run on this machine. Usage:

    .venv/bin/python bench/bench_policy.py [--presets sim paper] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from qtopt_learner.targets import next_state_values
from qtopt_policy.cem import CEMConfig, cem_maximize, draw_noise
from qtopt_policy.cem_actor import CEMActor, StateBatch
from qtopt_policy.qnetwork import PRESETS, QNetwork, preprocess_images
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import ModelMetadata, export_model, load_model

BOUNDS = ActionBounds()
CEM = CEMConfig()
BATCH = 32


def _states(n: int, size: int, device: torch.device, seed: int) -> StateBatch:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g)
    return StateBatch(images.to(device), torch.rand(n, 2, generator=g).to(device))


def _trained_like(preset: str, seed: int, device: torch.device) -> QNetwork:
    torch.manual_seed(seed)
    cfg = PRESETS[preset]
    net = QNetwork(cfg).train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        net(torch.rand(4, 3, cfg.image_size, cfg.image_size), torch.rand(4, 2), torch.randn(4, 8))
    return net.eval().to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], repeats: int, device: torch.device) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def reference_argmax(net: torch.nn.Module, state: StateBatch) -> torch.Tensor:
    """Per-sample CEM as public ports do: one full forward pass per candidate action."""
    noise = draw_noise(1, CEM)
    images = preprocess_images(state.images)

    def score(actions: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [torch.sigmoid(net(images, state.low_dim, actions[:, j])) for j in
             range(actions.shape[1])],
            dim=1,
        )

    with torch.inference_mode():
        return cem_maximize(score, noise, BOUNDS, CEM).values


def bench_preset(preset: str, device: torch.device, rows: list[dict]) -> None:
    size = PRESETS[preset].image_size
    small = preset == "sim" or device.type == "cuda"
    nets = {"eager": (_trained_like(preset, 0, device), _trained_like(preset, 1, device))}
    with tempfile.TemporaryDirectory() as tmp:
        scripted = []
        for i, net in enumerate(nets["eager"]):
            meta = ModelMetadata(preset, PRESETS[preset], BOUNDS, CEM, i + 1)
            export_model(net.cpu(), Path(tmp) / f"q{i}.pt", meta)
            net.to(device)
            scripted.append(load_model(Path(tmp) / f"q{i}.pt", device).module)
        nets["torchscript"] = tuple(scripted)
    one = _states(1, size, device, 0)
    batch = _states(BATCH, size, device, 1)
    select_reps = 200 if small else 10
    target_reps = 10 if small else 2
    for kind, (q1, q2) in nets.items():
        actor = CEMActor(q1, BOUNDS, CEM, device)
        select = _timed(lambda a=actor: a.argmax(one), select_reps, device)
        targets = _timed(lambda a=actor, q=q2: next_state_values(a, q, batch), target_reps, device)
        rows.append(dict(preset=preset, impl=f"batched {kind}",
                         p50=np.percentile(select, 50) * 1e3, p99=np.percentile(select, 99) * 1e3,
                         targets=BATCH / np.median(targets)))
    ref_states = 8 if small else 1
    ref = _timed(lambda: [reference_argmax(nets["eager"][0], _states(1, size, device, s))
                          for s in range(ref_states)], 1, device)
    per_state = np.asarray(ref) / ref_states
    rows.append(dict(preset=preset, impl="reference per-sample eager",
                     p50=np.median(per_state) * 1e3, p99=float("nan"),
                     targets=1.0 / np.median(per_state)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["sim", "paper"], choices=list(PRESETS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows: list[dict] = []
    for preset in tqdm(args.presets, desc="presets"):
        bench_preset(preset, device, rows)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    print(f"CEM N={CEM.num_samples} M={CEM.num_elites} iterations={CEM.iterations}; "
          f"targets use two target networks at batch {BATCH}\n")
    header = (f"| {'preset':<6} | {'implementation':<27} | {'select p50 ms':>13} | "
              f"{'select p99 ms':>13} | {'targets/s':>10} | {'x reference':>11} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for row in rows:
        ref = next(r for r in rows if r["preset"] == row["preset"] and "reference" in r["impl"])
        p99 = "-" if np.isnan(row["p99"]) else f"{row['p99']:.2f}"
        print(f"| {row['preset']:<6} | {row['impl']:<27} | {row['p50']:>13.2f} | "
              f"{p99:>13} | {row['targets']:>10.1f} | "
              f"{row['targets'] / ref['targets']:>10.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
