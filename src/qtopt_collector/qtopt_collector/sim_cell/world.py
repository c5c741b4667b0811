"""The PyBullet world of a simulated cell: the tray, the KUKA and the objects in the bin.

DIRECT mode, no network, no downloads: the KUKA, gripper, tray and the 1000 procedural objects
all ship with ``pybullet_data``. A world is built from a seed, so it is a pure function of it.
"""

from __future__ import annotations

import math

import numpy as np
import pybullet as pb
import pybullet_data

from qtopt_collector.sim_cell.config import SimCellConfig, object_split

TRAY_POSITION = (0.64, 0.075, -0.19)
FLOOR_Z = -0.184  # top of the tray's floor, measured by resting a 5 cm cube on it
KUKA_BASE = (-0.1, 0.0, 0.07)
ARM_JOINTS = tuple(range(7))
REST_POSE = (0.0, 0.41, 0.0, -1.59, 0.0, 1.14, 0.0)
LAYER = 10  # objects dropped per layer before the pile settles
REST_CHECK_STEPS = 60  # physics steps between checks for rest while settling
OFF_TRAY_DEPTH = 0.05  # m below the tray's floor: an object there fell off the tray


class SimWorld:
    """One PyBullet client with the tray, the robot and the objects in the bin (``objects``:
    body ids, ``object_ids``: their ``random_urdfs`` names, in the same order)."""

    tray: int  # body ids, set when the world is built
    robot: int

    def __init__(self, config: SimCellConfig) -> None:
        self.config = config
        self.client = pb.connect(pb.DIRECT)
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        self.objects: list[int] = []
        self.object_ids: list[str] = []
        self.rng = np.random.default_rng(0)
        self._split = object_split(config.object_split)

    def _build_world(self, seed: int | list[int], objects: int | None) -> None:
        """Rebuild the world from ``seed``: the robot at its rest pose over the tray and
        ``objects`` objects (by default drawn from [min_objects, max_objects]) dropped in."""
        c = self.client
        self.rng = np.random.default_rng(seed)
        pb.resetSimulation(physicsClientId=c)
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        pb.setTimeStep(1.0 / 240.0, physicsClientId=c)
        pb.setPhysicsEngineParameter(numSolverIterations=50, deterministicOverlappingPairs=1,
                                     physicsClientId=c)
        pb.loadURDF("plane.urdf", [0, 0, -0.65], physicsClientId=c)
        self.tray = pb.loadURDF("tray/tray.urdf", TRAY_POSITION, physicsClientId=c)
        self.robot = pb.loadSDF("kuka_iiwa/kuka_with_gripper2.sdf", physicsClientId=c)[0]
        pb.resetBasePositionAndOrientation(self.robot, KUKA_BASE, [0, 0, 0, 1],
                                           physicsClientId=c)
        for j, q in zip(ARM_JOINTS, REST_POSE, strict=True):
            pb.resetJointState(self.robot, j, q, physicsClientId=c)
        if objects is None:
            objects = int(self.rng.integers(self.config.min_objects, self.config.max_objects + 1))
        self._drop_objects(objects)

    def _drop_objects(self, n: int) -> None:
        c = self.client
        ids = self.rng.choice(self._split, size=n, replace=False)
        self.objects, self.object_ids = [], []
        hx, hy = 0.12, 0.12
        for k, i in enumerate(ids):
            pos = [TRAY_POSITION[0] + self.rng.uniform(-hx, hx),
                   TRAY_POSITION[1] + self.rng.uniform(-hy, hy),
                   FLOOR_Z + 0.08 + 0.04 * (k % LAYER)]
            orn = pb.getQuaternionFromEuler(self.rng.uniform(0, 2 * math.pi, 3).tolist())
            uid = pb.loadURDF(f"random_urdfs/{i:03d}/{i:03d}.urdf", pos, orn,
                              physicsClientId=c)
            self.objects.append(uid)
            self.object_ids.append(f"random_urdfs/{i:03d}")
            if (k + 1) % LAYER == 0 and k + 1 < n:
                self.settle()
        # Objects still moving after the longest wait (meshes that interpenetrate and push each
        # other apart forever) would change the bin between the drop test's two images and
        # label a failure a success; they leave the world, which stays a function of the seed,
        # as do objects that fell out of the tray.
        self._settle_and_prune()

    def _remove_objects(self, indices: list[int]) -> list[str]:
        """Remove the objects at ``indices`` from the world; returns their ids."""
        for k in indices:
            pb.removeBody(self.objects[k], physicsClientId=self.client)
        removed = [self.object_ids[k] for k in indices]
        self.objects = [u for k, u in enumerate(self.objects) if k not in indices]
        self.object_ids = [o for k, o in enumerate(self.object_ids) if k not in indices]
        return removed

    def close(self) -> None:
        if self.client >= 0 and pb.isConnected(self.client):
            pb.disconnect(self.client)
        self.client = -1

    def _settle_and_prune(self, min_steps: int | None = None) -> None:
        """Settle the bin (see :meth:`settle`), then remove the objects still moving or off
        the tray."""
        self._remove_objects(sorted(set(self.settle(min_steps)) | set(self._outside())))

    def _outside(self) -> list[int]:
        """Indices of the objects that came to rest below the tray's floor (off the tray)."""
        c = self.client
        return [k for k, uid in enumerate(self.objects)
                if pb.getBasePositionAndOrientation(uid, physicsClientId=c)[0][2]
                < FLOOR_Z - OFF_TRAY_DEPTH]

    def _restless(self) -> list[int]:
        """Indices of the objects moving faster than ``rest_speed`` or ``rest_spin``."""
        c, cfg = self.client, self.config
        out = []
        for k, uid in enumerate(self.objects):
            linear, angular = pb.getBaseVelocity(uid, physicsClientId=c)
            if np.linalg.norm(linear) > cfg.rest_speed or np.linalg.norm(angular) > cfg.rest_spin:
                out.append(k)
        return out

    def settle(self, min_steps: int | None = None) -> list[int]:
        """Step the physics ``min_steps`` times (default ``settle_steps``), then on until every
        object is at rest or ``max_settle_steps`` have passed (objects rolling or sliding down
        the tray's walls take seconds); returns the indices of the objects still moving
        (empty: all at rest)."""
        cfg = self.config
        steps = 0
        chunk = cfg.settle_steps if min_steps is None else min_steps
        while True:
            for _ in range(chunk):
                pb.stepSimulation(physicsClientId=self.client)
            steps += chunk
            restless = self._restless()
            if not restless or steps >= cfg.max_settle_steps:
                return restless
            chunk = min(REST_CHECK_STEPS, cfg.max_settle_steps - steps)
