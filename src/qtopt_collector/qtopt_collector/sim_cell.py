"""PyBullet grasping cell: KUKA LBR IIWA with a two-finger gripper over a bin (App. C, D).

DIRECT mode, no network, no downloads: the KUKA, gripper, tray and the 1000 procedural objects
all ship with ``pybullet_data``. Objects follow KukaDiverseObjectEnv's split: directories whose
number ends in 0 (100 objects) are held-out test objects, the other 900 are for training.

Control is Cartesian: each action moves the commanded end-effector position by a bounded
translation, turns the gripper's azimuth, and opens or closes the fingers, then runs
``substeps`` physics steps. By default every episode rebuilds the world from the seed, so an
episode is a pure function of (config, seed, actions). With ``respawn_every`` K > 1 a grasped
object is dropped back into the bin, as the paper's robots do (App. D.3), and the bin is
re-drawn only every K episodes (this project's choice), which saves the rebuild and settle.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pybullet as pb
import pybullet_data

from qtopt_collector.episode import GraspLabel
from qtopt_collector.success_detection import (
    LABELS,
    DropTest,
    SuccessDetectorConfig,
    detect_grasp_success,
    run_drop_test,
)
from qtopt_policy.spec import Action, ActionBounds, CameraSpec, Observation

TRAY_POSITION = (0.64, 0.075, -0.19)
FLOOR_Z = -0.184  # top of the tray's floor, measured by resting a 5 cm cube on it
KUKA_BASE = (-0.1, 0.0, 0.07)
EE_LINK = 6
FINGER_JOINTS = (8, 11)  # left, right finger (opposite signs)
TIP_JOINTS = (10, 13)
TIP_LINKS = (10, 13)
ARM_JOINTS = tuple(range(7))
REST_POSE = (0.0, 0.41, 0.0, -1.59, 0.0, 1.14, 0.0)
OPEN_ANGLE = 0.3  # rad per finger when open
DOWN = pb.getQuaternionFromEuler([0.0, -math.pi, 0.0])
NUM_OBJECTS = 1000
MAX_BIN_OBJECTS = 30  # bin emptying (Sec. 6.1): the paper's bin held 28 objects
LAYER = 10  # objects dropped per layer before the pile settles
REST_CHECK_STEPS = 60  # physics steps between checks for rest while settling
OFF_TRAY_DEPTH = 0.05  # m below the tray's floor: an object there fell off the tray
MAX_REDRAWS = 10  # a world that settles to an empty bin is drawn again, at most this often


def object_split(split: str) -> list[int]:
    """KukaDiverseObjectEnv's convention: ids ending in 0 are test objects."""
    if split == "test":
        return [i for i in range(NUM_OBJECTS) if i % 10 == 0]
    if split == "train":
        return [i for i in range(NUM_OBJECTS) if i % 10 != 0]
    raise ValueError(f"object split {split!r}: expected 'train' or 'test'")


@dataclass(frozen=True)
class SimCellConfig:
    """The simulated cell; fields mirror the sim cell node's parameters."""

    camera_width: int = 72  # rendered frame; the policy center-crops its input from it
    camera_height: int = 72
    camera_fov_deg: float = 48.0
    camera_distance: float = 0.75  # m from the bin centre
    camera_yaw_deg: float = 0.0  # beside the robot's shoulder, looking down into the bin
    camera_pitch_deg: float = -65.0
    camera_target_height: float = 0.0  # m above the bin floor: the point the camera aims at
    object_split: str = "train"
    # Episodes per world: 1 rebuilds the bin from the seed every episode; K > 1 keeps it for K
    # episodes, the arm restarting above the bin with the grasped object dropped back in.
    respawn_every: int = 1
    # How an episode is labeled: "detector", image subtraction after the drop test (App. D.3,
    # what a real cell does); "truth", the simulator's held-object check after the lift, without
    # the drop test's motions (the object is then dropped back into the bin).
    label: str = "detector"
    min_objects: int = 1  # objects per episode drawn uniformly in [min, max]
    max_objects: int = 10
    substeps: int = 80  # physics steps of 1/240 s per action
    settle_steps: int = 240  # physics steps to let dropped objects come to rest, at least
    max_settle_steps: int = 1200  # then up to this many until every object is at rest
    rest_speed: float = 0.01  # m/s: an object slower than this (and rest_spin) is at rest
    rest_spin: float = 0.1  # rad/s
    start_height: float = 0.30  # fingertip height above the bin floor at episode start, m
    min_height: float = 0.005  # workspace: lowest commanded fingertip height, m
    max_height: float = 0.40
    workspace_half_extent: tuple[float, float] = (0.15, 0.15)  # m around the bin centre (x, y)
    lift_height: float = 0.30  # after the episode the arm lifts to this height, m
    out_of_view_height: float = 0.45  # m; from here the arm moves sideways out of the image
    out_of_view_offset_y: float = 0.30  # m along +y from the bin centre
    success_height: float = 0.10  # ground truth: an object this high above the floor is held
    finger_force: float = 30.0  # N for the finger position motors
    arm_force: float = 200.0
    bounds: ActionBounds = field(default_factory=ActionBounds)
    success_detector: SuccessDetectorConfig = field(default_factory=SuccessDetectorConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects <= 10:
            raise ValueError(
                f"objects per episode [{self.min_objects}, {self.max_objects}]: expected "
                "1 <= min <= max <= 10"
            )
        object_split(self.object_split)
        if self.respawn_every < 1:
            raise ValueError(f"respawn_every {self.respawn_every}: expected >= 1")
        if self.label not in LABELS:
            raise ValueError(f"label {self.label!r}: expected one of {LABELS}")
        if self.max_settle_steps < self.settle_steps:
            raise ValueError(
                f"max_settle_steps {self.max_settle_steps}: expected at least settle_steps "
                f"({self.settle_steps})"
            )

    def camera(self) -> CameraSpec:
        """The rendered camera, as recorded in bags and models (provenance)."""
        return CameraSpec(self.camera_width, self.camera_height, self.camera_fov_deg,
                          self.camera_distance, self.camera_yaw_deg, self.camera_pitch_deg,
                          self.camera_target_height)

    def with_camera(self, camera: CameraSpec) -> SimCellConfig:
        """This cell rendering through ``camera`` (e.g. the one a model was trained with)."""
        return dataclasses.replace(
            self, camera_width=camera.width, camera_height=camera.height,
            camera_fov_deg=camera.fov_deg, camera_distance=camera.distance,
            camera_yaw_deg=camera.yaw_deg, camera_pitch_deg=camera.pitch_deg,
            camera_target_height=camera.target_height)


class SimCell:
    """One simulated grasping cell in its own PyBullet client."""

    def __init__(self, config: SimCellConfig = SimCellConfig()) -> None:
        self.config = config
        self.client = pb.connect(pb.DIRECT)
        pb.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        self.objects: list[int] = []
        self.object_ids: list[str] = []
        self.rng = np.random.default_rng(0)
        self._split = object_split(config.object_split)
        self._view, self._projection = self._camera_matrices()
        self._world_episodes = 0  # episodes started in the current world

    # -- episode life cycle -------------------------------------------------------------
    def reset(self, seed: int, objects: int | None = None) -> Observation:
        """Start a new episode and return the first observation: in the current world while it
        has served fewer than ``respawn_every`` episodes and still holds objects, else in a
        world rebuilt from ``seed``. ``objects`` fixes the number of objects (up to
        MAX_BIN_OBJECTS, for bin emptying; always a rebuild); by default it is drawn from
        [min_objects, max_objects]. A world that settles to an empty bin is drawn again."""
        if objects is not None and not 1 <= objects <= MAX_BIN_OBJECTS:
            raise ValueError(f"objects {objects}: expected 1..{MAX_BIN_OBJECTS}")
        if objects is None and 0 < self._world_episodes < self.config.respawn_every:
            # A grasped object dropped back may still be falling, or have left the tray.
            self._settle_and_prune(min_steps=0)
            if self.objects:
                self._world_episodes += 1
                self.rng = np.random.default_rng(seed)
                return self.restart()
        for redraw in range(MAX_REDRAWS):
            self._build_world(seed if redraw == 0 else [seed, redraw], objects)
            if self.objects:
                break
        else:
            raise RuntimeError(f"seed {seed}: {MAX_REDRAWS} worlds in a row settled to an "
                               "empty bin")
        # A bin-emptying world (``objects`` given) is not kept for plain episodes.
        self._world_episodes = 1 if objects is None else self.config.respawn_every
        return self.restart()

    def _build_world(self, seed: int | list[int], objects: int | None) -> None:
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
        self._tool_offset = 0.0

    def restart(self) -> Observation:
        """Start an episode in the current world: gripper open, arm at the start pose above
        the bin centre. Bin emptying (Sec. 6.1) starts every attempt after the first so."""
        self.gripper_closed = False
        self.yaw = 0.0
        centre = np.array(TRAY_POSITION[:2])
        self._teleport_arm(np.array([*centre, 0.0]), self.config.start_height)
        return self.observe()

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

    # -- state --------------------------------------------------------------------------
    def fingertip_height(self) -> float:
        """Lowest point of the two fingertips above the bin floor, m."""
        lows = [pb.getAABB(self.robot, link, physicsClientId=self.client)[0][2]
                for link in TIP_LINKS]
        return float(min(lows) - FLOOR_Z)

    def observe(self) -> Observation:
        # float32: the precision of Observation.height_to_bottom on the wire.
        height = float(np.float32(self.fingertip_height()))
        return Observation(self.render(), self.gripper_closed, height)

    def render(self) -> np.ndarray:
        """RGB frame from the over-the-shoulder camera (tiny renderer, never mixed with EGL)."""
        w, h = self.config.camera_width, self.config.camera_height
        _, _, rgba, _, _ = pb.getCameraImage(
            w, h, self._view, self._projection, renderer=pb.ER_TINY_RENDERER,
            physicsClientId=self.client,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3].copy()

    def _camera_matrices(self) -> tuple[list[float], list[float]]:
        cfg = self.config
        target = [TRAY_POSITION[0], TRAY_POSITION[1], FLOOR_Z + cfg.camera_target_height]
        view = pb.computeViewMatrixFromYawPitchRoll(
            target, cfg.camera_distance, cfg.camera_yaw_deg, cfg.camera_pitch_deg, 0.0, 2,
            physicsClientId=self.client,
        )
        projection = pb.computeProjectionMatrixFOV(
            cfg.camera_fov_deg, cfg.camera_width / cfg.camera_height, 0.01, 10.0,
            physicsClientId=self.client,
        )
        return view, projection

    # -- control ------------------------------------------------------------------------
    def _clip_target(self, xy: np.ndarray, height: float) -> tuple[np.ndarray, float]:
        centre = np.array(TRAY_POSITION[:2])
        half = np.array(self.config.workspace_half_extent)
        xy = np.clip(xy, centre - half, centre + half)
        height = float(np.clip(height, self.config.min_height, self.config.max_height))
        return xy, height

    def _ee_position(self, xy: np.ndarray, height: float) -> list[float]:
        return [float(xy[0]), float(xy[1]), FLOOR_Z + height + self._tool_offset]

    def _ik(self, position: list[float]) -> list[float]:
        orn = pb.getQuaternionFromEuler([0.0, -math.pi, self.yaw])
        q = pb.calculateInverseKinematics(
            self.robot, EE_LINK, position, orn,
            lowerLimits=[-2.96, -2.09, -2.96, -2.09, -2.96, -2.09, -3.05],
            upperLimits=[2.96, 2.09, 2.96, 2.09, 2.96, 2.09, 3.05],
            jointRanges=[5.8, 4.0, 5.8, 4.0, 5.8, 4.0, 6.0], restPoses=list(REST_POSE),
            maxNumIterations=50, physicsClientId=self.client,
        )
        return list(q[:7])

    def _teleport_arm(self, target: np.ndarray, height: float) -> None:
        """Place the arm exactly (episode start only), and learn the tool offset."""
        c = self.client
        ee_guess = [float(target[0]), float(target[1]), FLOOR_Z + height + 0.25]
        for _ in range(3):  # IK + measure the fingertip offset below the end effector
            for j, q in zip(ARM_JOINTS, self._ik(ee_guess), strict=True):
                pb.resetJointState(self.robot, j, q, physicsClientId=c)
            self._set_fingers(OPEN_ANGLE, reset=True)
            ee_z = pb.getLinkState(self.robot, EE_LINK, physicsClientId=c)[4][2]
            self._tool_offset = ee_z - (FLOOR_Z + self.fingertip_height())
            ee_guess[2] = FLOOR_Z + height + self._tool_offset
        self.target = np.array([target[0], target[1], height])
        self._drive_arm(self.target, steps=10)

    def _set_fingers(self, angle: float, reset: bool = False) -> None:
        c = self.client
        for joint, sign in zip(FINGER_JOINTS, (-1.0, 1.0), strict=True):
            if reset:
                pb.resetJointState(self.robot, joint, sign * angle, physicsClientId=c)
            pb.setJointMotorControl2(self.robot, joint, pb.POSITION_CONTROL, sign * angle,
                                     force=self.config.finger_force, physicsClientId=c)
        for joint in TIP_JOINTS:
            pb.setJointMotorControl2(self.robot, joint, pb.POSITION_CONTROL, 0.0,
                                     force=self.config.finger_force, physicsClientId=c)

    def _drive_arm(self, target: np.ndarray, steps: int) -> None:
        q = self._ik(self._ee_position(target[:2], float(target[2])))
        c = self.client
        for j, qj in zip(ARM_JOINTS, q, strict=True):
            pb.setJointMotorControl2(self.robot, j, pb.POSITION_CONTROL, qj,
                                     force=self.config.arm_force, maxVelocity=2.0,
                                     physicsClientId=c)
        for _ in range(steps):
            pb.stepSimulation(physicsClientId=c)

    def execute(self, action: Action) -> None:
        """Apply one action of the MDP (bounded, workspace-clipped) and step the physics: a
        gripper change first (as a separate gripper device does), then the arm motion."""
        action.validate(self.config.bounds)
        if action.gripper_close != self.gripper_closed:
            self.set_gripper(action.gripper_close)
        # float32, as GraspAction and ArmCommand carry them: the in-process loop and the ROS
        # graph then drive the physics with identical numbers.
        t = np.asarray(action.translation, dtype=np.float32).astype(np.float64)
        rotation = float(np.float32(action.rotation))
        xy, height = self._clip_target(self.target[:2] + t[:2], float(self.target[2] + t[2]))
        self.target = np.array([xy[0], xy[1], height])
        self.yaw = float(np.clip(self.yaw + rotation, -math.pi, math.pi))
        self._drive_arm(self.target, self.config.substeps)

    def move_to(self, xy: np.ndarray, height: float, steps: int | None = None) -> None:
        """Scripted motion outside the MDP (lift after the episode, drop test)."""
        xy, height = self._clip_target(np.asarray(xy, dtype=np.float64), height)
        self.target = np.array([xy[0], xy[1], height])
        self._drive_arm(self.target, steps or self.config.substeps)

    def _move_through(self, waypoints: list[tuple[float, float, float]]) -> None:
        """Cartesian waypoints (x, y, fingertip height) outside the workspace clip."""
        for x, y, height in waypoints:
            self.target = np.array([x, y, height])
            self._drive_arm(self.target, self.config.substeps)

    def move_out_of_view(self) -> None:
        """Up, then sideways out of the camera's view (App. D.3), keeping the gripper state;
        then wait until the objects in the bin are at rest."""
        x, y, _ = self.target
        cx, cy = TRAY_POSITION[:2]
        h, dy = self.config.out_of_view_height, self.config.out_of_view_offset_y
        self._move_through([(x, y, h), (cx, cy + dy, h)])
        self.settle()

    def return_over_bin(self, height: float | None = None) -> None:
        """From out of view back above the bin centre (at the lift height by default)."""
        cx, cy = TRAY_POSITION[:2]
        h = self.config.out_of_view_height
        self._move_through([(cx, cy, h), (cx, cy, height or self._lift_height)])

    def set_gripper(self, closed: bool, steps: int | None = None) -> None:
        """Open or close the fingers and let them move; commanding the current state is a
        no-op, as for a real gripper."""
        if closed == self.gripper_closed:
            return
        self.gripper_closed = closed
        self._set_fingers(0.0 if closed else OPEN_ANGLE)
        for _ in range(steps or self.config.substeps // 2):
            pb.stepSimulation(physicsClientId=self.client)

    def _held(self) -> list[int]:
        """Indices of the objects touching the gripper at least ``success_height`` above the
        bin floor (touching: an object resting high on a pile is not held)."""
        c = self.client
        return [k for k, uid in enumerate(self.objects)
                if pb.getBasePositionAndOrientation(uid, physicsClientId=c)[0][2] - FLOOR_Z
                > self.config.success_height
                and pb.getContactPoints(bodyA=self.robot, bodyB=uid, physicsClientId=c)]

    def held_object_ground_truth(self) -> bool:
        """Simulator truth: the gripper holds an object at least ``success_height`` above the
        bin floor."""
        return bool(self._held())

    def remove_held_objects(self) -> list[str]:
        """Take what the gripper holds out of the world (bin emptying puts grasped objects
        aside instead of dropping them back); returns their ids."""
        return self._remove_objects(self._held())

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

    # -- drop test rig (App. D.3) -------------------------------------------------------
    @property
    def _lift_height(self) -> float:
        # float32, as ArmCommand carries it: a kept bin must not make the in-process loop and
        # the ROS graph drift apart through rounding.
        return float(np.float32(self.config.lift_height))

    def lift(self) -> None:
        self.move_to(self.target[:2], self._lift_height)

    def capture(self) -> np.ndarray:
        return self.render()

    def open_gripper(self) -> None:
        self.set_gripper(False)

    def drop_test(self) -> DropTest:
        return run_drop_test(self)

    def label_grasp(self) -> GraspLabel:
        if self.config.label == "truth":
            self.lift()
            held = self.held_object_ground_truth()
            self.open_gripper()  # the object falls back into the bin for the next episode
            return GraspLabel(held, held)
        drop = self.drop_test()
        result = detect_grasp_success(drop.before, drop.after, self.config.success_detector)
        return GraspLabel(result.success, drop.ground_truth, result)

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
