"""Probe: can a Q-network architecture see the grasp coming? (issue 15, item 3)

The decision the learned policy fails is a fine spatial one: is the object between the fingers
(close here) or beside them, and after the lift, is an object held (stop) or not. This probe
asks each candidate network that question by supervised learning, without Bellman targets:

- pre-close: the state in which pi_scripted closed the gripper, with the close action; label:
  the grasp succeeded (the simulator's truth);
- terminal: the lifted states with the gripper closed, with the stop action; same label.

Scripted episodes on train objects (the main job's training cell) are split by episode into
train and held-out parts; each variant trains on both questions at once (SGD momentum 0.9,
lr 1e-2, batch 32, App. E's augmentation with random crops) and reports the held-out AUC of
each after every ``--eval-every`` steps, over several seeds. Variants change the merge
resolution of the action (``tower_pool``), the width (``channels``) and the input (72 px frames,
64 px crops, against 104 px frames, 96 px crops).

    python bench/probe_grasp_signal.py runs/probe --episodes 2000 --steps 5000 --seeds 3

Episodes are collected once into ``OUT/episodes_<frame>px`` (resumable) and reused; results go
to ``OUT/results.json``, ``OUT/probe.png`` and a table on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig, read_episodes  # noqa: E402
from qtopt_collector.episode import EpisodeConfig, run_episode  # noqa: E402
from qtopt_collector.sim_cell import SimCell  # noqa: E402
from qtopt_learner.app.main_job_config import MainJobConfig  # noqa: E402
from qtopt_learner.augmentation import (  # noqa: E402
    AugmentConfig,
    apply_augmentation,
    draw_augmentation,
)
from qtopt_learner.probes import lifted_states, roc_auc  # noqa: E402
from qtopt_policy.episode_record import EpisodeRecord  # noqa: E402
from qtopt_policy.policies import local_policy  # noqa: E402
from qtopt_policy.qnetwork import PRESETS, QNetwork, QNetworkConfig  # noqa: E402
from qtopt_policy.spec import LOW_DIM_STATE, Action, ActionBounds, center_crop  # noqa: E402

SIM = PRESETS["sim"]
# name -> (network, rendered frame side); the network crops image_size from the frame.
VARIANTS: dict[str, tuple[QNetworkConfig, int]] = {
    "sim (4x4 merge)": (SIM, 72),
    "8x8 merge": (dataclasses.replace(SIM, tower_pool=2), 72),
    "32 channels": (dataclasses.replace(SIM, channels=32), 72),
    "96 px": (dataclasses.replace(SIM, image_size=96, tower_pool=6), 104),
}
SEED = 500_000  # probe episodes use seeds from here


def collect(out: Path, frame: int, episodes: int) -> list[EpisodeRecord]:
    """Scripted episodes on train objects, recorded once and reused (resumable)."""
    folder = out / f"episodes_{frame}px"
    records = list(read_episodes(folder)) if folder.exists() else []
    if len(records) < episodes:
        cell_config = dataclasses.replace(
            MainJobConfig(run_dir=str(out)).sim("train"), camera_width=frame,
            camera_height=frame)
        recorder = BagRecorder(RecorderConfig(str(folder), "probe",
                                              camera=cell_config.camera().to_json(),
                                              label_source=cell_config.label))
        cell = SimCell(cell_config)
        started = time.monotonic()
        try:
            for k in range(len(records), episodes):
                seed = SEED + k
                record = run_episode(cell, local_policy("scripted", ActionBounds(), seed), seed,
                                     EpisodeConfig(step_penalty=0.0))
                recorder.write(record)
                records.append(record)
                if (k + 1) % 100 == 0:
                    print(f"[probe] {frame} px: {k + 1}/{episodes} episodes, "
                          f"{time.monotonic() - started:.0f} s", flush=True)
        finally:
            cell.close()
    return sorted(records, key=lambda r: r.seed)[:episodes]


@dataclasses.dataclass
class Examples:
    images: torch.Tensor  # uint8 [N, H, W, 3] frames
    low_dim: torch.Tensor  # [N, 2]
    actions: torch.Tensor  # [N, A]
    labels: torch.Tensor  # [N] float
    terminal: torch.Tensor  # [N] bool: a terminal (stop) example, else pre-close


def examples(records: list[EpisodeRecord]) -> Examples:
    rows = []
    stop = Action.stop()
    for record in records:
        truth = bool(record.ground_truth)
        closing = next((s for s in record.steps
                        if s.action.gripper_close and not s.observation.gripper_closed), None)
        if closing is not None:
            rows.append((closing.observation, closing.action, truth, False))
        observations, labels = lifted_states([record])
        rows += [(o, stop, bool(label), True) for o, label in zip(observations, labels,
                                                                    strict=True)]
    return Examples(
        torch.from_numpy(np.stack([o.image for o, _, _, _ in rows])),
        torch.from_numpy(LOW_DIM_STATE.encode_batch(o for o, _, _, _ in rows)),
        torch.from_numpy(np.stack([a.to_vector() for _, a, _, _ in rows])),
        torch.tensor([float(y) for _, _, y, _ in rows]),
        torch.tensor([t for _, _, _, t in rows]))


def held_out_auc(net: QNetwork, data: Examples, size: int) -> dict[str, float]:
    net.eval()
    with torch.inference_mode():
        crops = torch.from_numpy(np.stack([center_crop(i.numpy(), size) for i in data.images]))
        logits = torch.cat([net(_float(crops[i:i + 256]), data.low_dim[i:i + 256],
                                data.actions[i:i + 256]) for i in range(0, len(crops), 256)])
    net.train()
    out = {}
    for name, mask in (("pre_close", ~data.terminal), ("terminal", data.terminal)):
        out[name] = roc_auc(logits[mask].numpy(), data.labels[mask].numpy().astype(bool))
    return out


def _float(images: torch.Tensor) -> torch.Tensor:
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def train_variant(config: QNetworkConfig, train: Examples, test: Examples, steps: int,
                  eval_every: int, seed: int) -> list[dict[str, float]]:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = QNetwork(config)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9, weight_decay=7e-5)
    frame = tuple(train.images.shape[1:3])
    curve = []
    for step in range(1, steps + 1):
        idx = torch.randint(len(train.labels), (32,), generator=generator)
        draw = draw_augmentation(32, frame, config.image_size, AugmentConfig(), generator)
        images = apply_augmentation(train.images[idx], draw, config.image_size)
        loss = F.binary_cross_entropy_with_logits(
            net(_float(images), train.low_dim[idx], train.actions[idx]), train.labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % eval_every == 0:
            curve.append({"step": step, **held_out_auc(net, test, config.image_size)})
    return curve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--episodes", type=int, default=2000)
    p.add_argument("--held-out", type=float, default=0.25, help="share of episodes held out")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = p.parse_args()
    if args.episodes < 8 or not 0 < args.held_out < 1:
        raise SystemExit(f"probe_grasp_signal: error: --episodes {args.episodes} / --held-out "
                         f"{args.held_out}: expected >= 8 and a share in (0, 1)")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.variants:
        config, frame = VARIANTS[name]
        records = collect(args.out, frame, args.episodes)
        cut = int(len(records) * (1 - args.held_out))
        train, test = examples(records[:cut]), examples(records[cut:])
        for seed in range(args.seeds):
            key = f"{name} / seed {seed}"
            if key in results:
                continue
            started = time.monotonic()
            curve = train_variant(config, train, test, args.steps, args.eval_every, seed)
            results[key] = {"variant": name, "seed": seed, "curve": curve,
                            "seconds": round(time.monotonic() - started, 1)}
            results_path.write_text(json.dumps(results, indent=1))
            last = curve[-1]
            print(f"[probe] {key}: pre-close AUC {last['pre_close']:.3f}, terminal AUC "
                  f"{last['terminal']:.3f} at {last['step']} steps "
                  f"({results[key]['seconds']:.0f} s)", flush=True)
    report(results, args.out)


def report(results: dict, out: Path) -> None:
    by_variant: dict[str, list[dict]] = {}
    for r in results.values():
        by_variant.setdefault(r["variant"], []).append(r)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    print("\n| variant | seeds | pre-close AUC (mean, min-max) | terminal AUC | s per run |")
    print("|---|---|---|---|---|")
    for name, runs in by_variant.items():
        steps = [c["step"] for c in runs[0]["curve"]]
        for ax, key in zip(axes, ("pre_close", "terminal"), strict=True):
            mean = [np.mean([r["curve"][i][key] for r in runs]) for i in range(len(steps))]
            ax.plot(steps, mean, marker="o", label=name)
        final = {k: [r["curve"][-1][k] for r in runs] for k in ("pre_close", "terminal")}
        print(f"| {name} | {len(runs)} | {np.mean(final['pre_close']):.3f} "
              f"({min(final['pre_close']):.3f}-{max(final['pre_close']):.3f}) | "
              f"{np.mean(final['terminal']):.3f} ({min(final['terminal']):.3f}-"
              f"{max(final['terminal']):.3f}) | "
              f"{np.mean([r['seconds'] for r in runs]):.0f} |")
    for ax, title in zip(axes, ("pre-close: close here?", "terminal: holding?"), strict=True):
        ax.set(title=title, xlabel="gradient steps", ylabel="held-out AUC", ylim=(0.4, 1.0))
        ax.axhline(0.5, color="gray", linestyle=":")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "probe.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
