"""Where a learner keeps its files under its run folder: checkpoints, TensorBoard logs, every
TorchScript export (kept for learning curves) and the latest one that policies reload (App. F.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXPORT_GLOB = "model-*.pt"


@dataclass(frozen=True)
class LearnerLayout:
    """The paths of one learner run folder."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def latest_model(self) -> Path:
        """The newest export under a fixed name: what the policy node serves."""
        return self.root / "model.pt"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    def model_at(self, step: int) -> Path:
        return self.models / f"model-{step:09d}.pt"

    def exports(self) -> list[tuple[int, Path]]:
        """Every kept export as (training step, path), oldest first."""
        return sorted((export_step(p), p) for p in self.models.glob(EXPORT_GLOB))

    def latest_export_step(self) -> int:
        exports = self.exports()
        if not exports:
            raise RuntimeError(f"no exported model under {self.models}")
        return exports[-1][0]


def export_step(path: Path) -> int:
    """The training step in an export's file name (``model-000001000.pt`` -> 1000)."""
    return int(path.stem.split("-")[1])
