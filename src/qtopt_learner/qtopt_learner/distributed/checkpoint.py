"""Crash-safe checkpoints of the learner (model, optimizer, targets, step, RNG, config).

Every checkpoint is written to a temporary file, fsynced and renamed, so a kill -9 at any moment
leaves either the previous or the new checkpoint, never a torn one. The newest loadable file
wins; an unreadable one (e.g. damaged on disk) is reported and the previous one is used.
"""

from __future__ import annotations

import io
import os
import random
import re
import sys
from pathlib import Path

import numpy as np
import torch

from qtopt_collector.bag_recorder import fsync_dir

PATTERN = re.compile(r"^ckpt-(\d{9})\.pt$")


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(directory: Path | str, step: int, state: dict, keep: int = 3) -> Path:
    """Write ``state`` as ``ckpt-<step>.pt`` atomically; keep the newest ``keep`` files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = directory / f"ckpt-{step:09d}.pt"
    tmp = directory / f".{path.name}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(buffer.getbuffer())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(directory)
    for old in checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def checkpoints(directory: Path | str) -> list[Path]:
    """Checkpoint files, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if PATTERN.match(p.name))


def load_latest_checkpoint(directory: Path | str) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, or None when there is none. Temporary files of a
    writer that was killed mid-write are removed first."""
    directory = Path(directory)
    if directory.is_dir():
        for stale in directory.glob(".ckpt-*.tmp*"):
            stale.unlink(missing_ok=True)
    for path in reversed(checkpoints(directory)):
        try:
            return path, torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # torch raises several types for damaged archives
            print(f"[learner] checkpoint {path} is unreadable ({err}); trying an older one",
                  file=sys.stderr)
    return None
