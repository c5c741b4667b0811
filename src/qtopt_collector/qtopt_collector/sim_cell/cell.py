"""The simulated grasping cell: a world with its camera, arm and gripper, run as episodes.

By default every episode rebuilds the world from the seed, so an episode is a pure function of
(config, seed, actions). With ``respawn_every`` K > 1 a grasped object is dropped back into the
bin, as the paper's robots do (App. D.3), and the bin is re-drawn only every K episodes (this
project's choice), which saves the rebuild and settle.
"""

from __future__ import annotations

import numpy as np

from qtopt_collector.episode import GraspLabel
from qtopt_collector.sim_cell.arm import SimArm
from qtopt_collector.sim_cell.camera import SimCamera
from qtopt_collector.sim_cell.config import SimCellConfig
from qtopt_collector.sim_cell.gripper import SimGripper
from qtopt_collector.sim_cell.world import SimWorld
from qtopt_collector.success_detection import DropTest, detect_grasp_success, run_drop_test
from qtopt_policy.names import MAX_BIN_OBJECTS
from qtopt_policy.spec import Action, Observation

MAX_REDRAWS = 10  # a world that settles to an empty bin is drawn again, at most this often


class SimCell(SimWorld):
    """One simulated grasping cell in its own PyBullet client: the episode loop's ``Cell`` and
    the drop test's rig. Its ``camera``, ``arm`` and ``gripper`` are the device backends the
    cell's ROS nodes serve."""

    def __init__(self, config: SimCellConfig = SimCellConfig()) -> None:
        super().__init__(config)
        self.camera = SimCamera(self, config)
        self.gripper = SimGripper(self, config)
        self.arm = SimArm(self, self.gripper, config, start_episode=self.reset)
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
            if self.config.restart_settle:
                self._settle_and_prune(min_steps=0)
            else:
                self._remove_objects(self._outside())
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

    def restart(self) -> Observation:
        """Start an episode in the current world: gripper open, arm at the start pose above
        the bin centre. Bin emptying (Sec. 6.1) starts every attempt after the first so."""
        self.arm.start()
        return self.observe()

    def observe(self) -> Observation:
        """The state: camera frame, gripper state and fingertip height (Sec. 5)."""
        # float32: the precision of Observation.height_to_bottom on the wire.
        height = float(np.float32(self.arm.fingertip_height()))
        return Observation(self.render(), self.gripper.closed, height)

    def execute(self, action: Action) -> None:
        """Apply one action of the MDP (bounded, workspace-clipped) and step the physics: a
        gripper change first (as a separate gripper device does), then the arm motion."""
        action.validate(self.config.bounds)
        self.gripper.set_closed(action.gripper_close)  # a no-op when unchanged
        self.arm.step(action.translation, action.rotation)

    @property
    def target(self) -> np.ndarray:
        """The arm's commanded (x, y, fingertip height above the bin floor)."""
        return self.arm.target

    @property
    def gripper_closed(self) -> bool:
        return self.gripper.closed

    def render(self) -> np.ndarray:
        """RGB frame from the over-the-shoulder camera."""
        return self.camera.capture()

    def _camera_matrices(self) -> tuple[list[float], list[float]]:
        """The camera's view and projection matrices (see :meth:`SimCamera.matrices`)."""
        return self.camera.matrices()

    def set_gripper(self, closed: bool, steps: int | None = None) -> None:
        """See :meth:`SimGripper.set_closed`."""
        self.gripper.set_closed(closed, steps)

    # -- ground truth and bin emptying --------------------------------------------------
    def held_object_ground_truth(self) -> bool:
        """Simulator truth: the gripper holds an object at least ``success_height`` above the
        bin floor."""
        return bool(self.gripper.held())

    def remove_held_objects(self) -> list[str]:
        """Take what the gripper holds out of the world (bin emptying puts grasped objects
        aside instead of dropping them back); returns their ids."""
        return self._remove_objects(self.gripper.held())

    # -- drop test rig (App. D.3) -------------------------------------------------------
    def lift(self) -> None:
        self.arm.lift()

    def move_out_of_view(self) -> None:
        self.arm.move_out_of_view()

    def capture(self) -> np.ndarray:
        return self.render()

    def return_over_bin(self, height: float | None = None) -> None:
        self.arm.return_over_bin(height)

    def open_gripper(self) -> None:
        self.gripper.set_closed(False)

    def drop_test(self) -> DropTest:
        return run_drop_test(self)

    def label_grasp(self) -> GraspLabel:
        if self.config.label == "truth":
            self.lift()
            held = self.held_object_ground_truth()
            self.open_gripper()  # the object falls back into the bin for the next episode
            return GraspLabel(held, held)
        drop = self.drop_test()
        result = detect_grasp_success(drop.before, drop.after, self.config.drop_test.detector)
        return GraspLabel(result.success, drop.ground_truth, result)
