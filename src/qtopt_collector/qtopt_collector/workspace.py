"""Where a cell's fingertips may go, relative to the bin; the sim and the real arm share it."""

from __future__ import annotations

from dataclasses import dataclass

from qtopt_policy.config_fields import bounded, check_bounds


@dataclass(frozen=True)
class WorkspaceConfig:
    """Fingertip workspace and scripted poses; heights in m above the bin floor."""

    half_extent: tuple[float, float] = (0.15, 0.15)  # m around the bin centre (x, y)
    start_height: float = bounded(0.30, ge=0)  # m, over the bin centre at episode start
    min_height: float = bounded(0.005, ge=0)  # m, lowest commanded height
    max_height: float = bounded(0.40, ge=0)  # m, highest commanded height
    # m; from here the arm moves sideways out of the image
    out_of_view_height: float = bounded(0.45, ge=0)
    out_of_view_offset_y: float = 0.30  # m along +y from the bin centre

    def __post_init__(self) -> None:
        check_bounds(self)
