"""Where recorded episodes are on disk: rosbag2 folders and their MCAP files, found with
pathlib alone (no rosbags import), so that commands check the paths they are given at once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

METADATA = "metadata.yaml"


def find_bags(root: Path | str) -> list[Path]:
    """Every rosbag2 folder (one with a metadata.yaml) at or below ``root``."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(METADATA) if not p.parent.name.startswith("."))


def episode_files(roots: Iterable[Path | str]) -> list[Path]:
    """Every MCAP file below the given bags or folders (hidden and temporary files excluded)."""
    files: set[Path] = set()
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"log replay path {root} does not exist")
        candidates = [root] if root.is_file() else root.rglob("*.mcap")
        files.update(p for p in candidates if p.suffix == ".mcap"
                     and not any(part.startswith(".") for part in p.relative_to(
                         root.parent if root.is_file() else root).parts))
    return sorted(files)
