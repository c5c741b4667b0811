"""Episode filmstrips: one row of camera frames per episode, labelled, saved as PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from qtopt_policy.episode_record import EpisodeRecord

FRAME_PX = 144
MAX_FRAMES = 12


def filmstrip(episodes: list[EpisodeRecord], path: Path, titles: list[str] | None = None) -> None:
    """Write the frames of ``episodes`` (up to MAX_FRAMES each) as one PNG at ``path``;
    ``titles`` prefix each row's label (default: the episode id)."""
    rows = []
    for i, ep in enumerate(episodes):
        frames = [s.observation.image for s in ep.steps] + [ep.final_observation.image]
        frames = [cv2.resize(f, (FRAME_PX, FRAME_PX), interpolation=cv2.INTER_NEAREST)
                  for f in frames[:MAX_FRAMES]]
        row = np.concatenate(frames + [np.zeros_like(frames[0])] * (MAX_FRAMES - len(frames)),
                             axis=1)
        title = titles[i] if titles else ep.episode_id
        label = f"{title}: label {'success' if ep.success else 'failure'}, " \
                f"truth {'success' if ep.ground_truth else 'failure'}"
        cv2.putText(row, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
