"""Where a cell's fingertips may go, relative to the bin; the sim and the real arm share it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkspaceConfig:
    """Fingertip workspace and scripted poses; heights in m above the bin floor."""

    half_extent: tuple[float, float] = (0.15, 0.15)  # m around the bin centre (x, y)
    start_height: float = 0.30  # above the bin centre at episode start
    min_height: float = 0.005  # lowest commanded height
    max_height: float = 0.40
    out_of_view_height: float = 0.45  # from here the arm moves sideways out of the image
    out_of_view_offset_y: float = 0.30  # m along +y from the bin centre
