"""Load an exported dataset with LeRobot's own ``LeRobotDataset`` (lerobot 0.4.4) and save what
it returns, for test_lerobot_export.py, which runs this script in a subprocess whose PYTHONPATH
holds the reader packages (the venv has no lerobot).

Usage: python lerobot_reader.py DATASET OUT.npz
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow.parquet as pq
from lerobot.datasets.compute_stats import aggregate_stats
from lerobot.datasets.lerobot_dataset import LeRobotDataset

VECTORS = ("observation.state", "action", "next.reward", "next.done", "timestamp",
           "frame_index", "episode_index", "index", "task_index")


def episode_stats(root: str) -> list[dict[str, dict[str, np.ndarray]]]:
    """The per-episode stats of the episode table, as LeRobot's dataset tools rebuild them."""
    stats = []
    for row in pq.read_table(f"{root}/meta/episodes").to_pylist():
        episode: dict[str, dict[str, np.ndarray]] = {}
        for key, value in row.items():
            if key.startswith("stats/"):
                feature, stat = key.removeprefix("stats/").rsplit("/", 1)
                episode.setdefault(feature, {})[stat] = np.array(value)
        stats.append(episode)
    return stats


def main(root: str, out: str) -> None:
    dataset = LeRobotDataset("qtopt/export", root=root)
    items = [dataset[i] for i in range(len(dataset))]
    arrays = {key: np.stack([item[key].numpy() for item in items]) for key in VECTORS}
    # ToTensor scaled the uint8 frames to [0, 1], channels first
    images = np.stack([item["observation.image"].numpy() for item in items])
    arrays["observation.image"] = np.rint(images.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    # Episode boundaries as LeRobot sees them: neighbours outside the episode are padding.
    fps = dataset.fps
    windowed = LeRobotDataset("qtopt/export", root=root,
                              delta_timestamps={"action": [-1 / fps, 0.0, 1 / fps]})
    arrays["action_is_pad"] = np.stack([windowed[i]["action_is_pad"].numpy()
                                        for i in range(len(windowed))])
    episodes = dataset.meta.episodes
    stats = {name: {k: v.tolist() for k, v in s.items()}
             for name, s in dataset.meta.stats.items()}
    aggregated = {name: {k: v.tolist() for k, v in s.items()}
                  for name, s in aggregate_stats(episode_stats(root)).items()}
    info = {
        "len": len(dataset), "num_episodes": dataset.num_episodes, "fps": fps,
        "features": dataset.features, "tasks": [item["task"] for item in items],
        "episodes": {key: list(episodes[key]) for key in (
            "episode_index", "length", "dataset_from_index", "dataset_to_index", "success",
            "episode_id")},
        "stats": stats, "lerobot_aggregated_stats": aggregated,
    }
    np.savez(out, info=np.array(json.dumps(info)), **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
