"""The simulated over-the-shoulder camera, a ``CameraBackend`` itself."""

from __future__ import annotations

import numpy as np
import pybullet as pb

from qtopt_collector.sim_cell.config import SimCellConfig
from qtopt_collector.sim_cell.world import FLOOR_Z, TRAY_POSITION, SimWorld


class SimCamera:
    """Renders ``world`` from the pose in ``config`` (its ``camera()`` spec), aimed at a point
    ``camera_target_height`` above the bin centre."""

    def __init__(self, world: SimWorld, config: SimCellConfig) -> None:
        self.world = world
        self.config = config
        self._view, self._projection = self.matrices()

    def capture(self) -> np.ndarray:
        """RGB frame, H x W x 3 uint8 (tiny renderer, never mixed with EGL)."""
        w, h = self.config.camera_width, self.config.camera_height
        _, _, rgba, _, _ = pb.getCameraImage(
            w, h, self._view, self._projection, renderer=pb.ER_TINY_RENDERER,
            physicsClientId=self.world.client,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3].copy()

    def matrices(self) -> tuple[list[float], list[float]]:
        """The view and projection matrices, as PyBullet takes them (column-major)."""
        cfg = self.config
        target = [TRAY_POSITION[0], TRAY_POSITION[1], FLOOR_Z + cfg.camera_target_height]
        view = pb.computeViewMatrixFromYawPitchRoll(
            target, cfg.camera_distance, cfg.camera_yaw_deg, cfg.camera_pitch_deg, 0.0, 2,
            physicsClientId=self.world.client,
        )
        projection = pb.computeProjectionMatrixFOV(
            cfg.camera_fov_deg, cfg.camera_width / cfg.camera_height, 0.01, 10.0,
            physicsClientId=self.world.client,
        )
        return view, projection
