"""Progress of a running main job, read from the episodes its cells recorded (issue 15).

While the learner trains, the only live sign of learning is the success of the pi_noisy
episodes the cells collect around each export (App. C, F.1). This reads the run's bags (the
newest ``--bags`` folders, so a check during a run stays light), groups the episodes by policy
and by the export's gradient step, and prints success and steps per group:

    python bench/collection_progress.py runs/main16 --bin 1000

Results go to a table on stdout and ``RUN/collection_progress.png``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from qtopt_collector.bag_recorder import read_episodes  # noqa: E402
from qtopt_policy.episode_record import EpisodeRecord  # noqa: E402


def newest_bags(episodes: Path, count: int) -> list[Path]:
    """The ``count`` newest bag folders below ``episodes`` (all when ``count`` is 0)."""
    bags = sorted((p for p in episodes.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return bags[-count:] if count else bags


def group(records: list[EpisodeRecord], bin_steps: int
          ) -> dict[tuple[str, int], list[EpisodeRecord]]:
    """Episodes by (policy, first gradient step of the export's bin)."""
    groups: dict[tuple[str, int], list[EpisodeRecord]] = defaultdict(list)
    for record in records:
        groups[record.policy_name, record.model_version // bin_steps * bin_steps].append(record)
    return dict(sorted(groups.items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a main-job run folder (qtopt run --run-dir)")
    p.add_argument("--bags", type=int, default=0, help="newest bag folders read (0: all)")
    p.add_argument("--bin", type=int, default=1000, help="gradient steps per group")
    args = p.parse_args()
    if args.bin <= 0:
        p.error(f"--bin {args.bin}: expected a positive number of gradient steps")
    episodes = args.run / "episodes"
    if not episodes.is_dir():
        p.error(f"{args.run}: expected a run folder with an episodes/ folder")

    records = [r for bag in newest_bags(episodes, args.bags) for r in read_episodes(bag)]
    groups = group(records, args.bin)
    print("| policy | export steps | episodes | success | steps per episode |")
    print("|---|---|---|---|---|")
    curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (policy, start), members in groups.items():
        rate = sum(r.outcome for r in members) / len(members)
        steps = sum(len(r.steps) for r in members) / len(members)
        print(f"| {policy} | {start:,}-{start + args.bin - 1:,} | {len(members)} | "
              f"{100 * rate:.1f} % | {steps:.1f} |")
        curves[policy].append((start, rate))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for policy, points in curves.items():
        ax.plot([s for s, _ in points], [100 * r for _, r in points], marker="o", label=policy)
    ax.set_xlabel("gradient step of the collecting export")
    ax.set_ylabel("success of collected episodes (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.run / "collection_progress.png", dpi=120)
    print(f"{len(records)} episodes; plot {args.run / 'collection_progress.png'}")


if __name__ == "__main__":
    main()
