"""The sim cell as a Gymnasium environment: the grasping MDP of Kalashnikov et al. 2018 (Sec. 5,
App. D.4) one step at a time, for RL libraries and one's own agents.

- Observation: the state s of Sec. 5 as a ``Dict`` named like the spec's ``STATE_FIELDS``:
  ``image`` (uint8 H x W x 3, the camera's frame), ``gripper_closed`` (0 or 1) and
  ``height_to_bottom`` (m), both float32 ``(1,)`` as the network's low-dim input
  (``LOW_DIM_STATE``) holds them.
- Action: the action a of Sec. 5 as a ``Dict`` in the spec's units and bounds
  (``ActionBounds``): ``world_vector`` (m, base frame), ``vertical_rotation`` (sin, cos of the
  azimuth change), ``gripper_close`` (1 closes, 0 opens: the spec's one-hot close/open) and
  ``terminate``. It becomes an :class:`~qtopt_policy.spec.Action` through the spec's codec.
- Steps, rewards and termination are the episode loop's (``episode.take_step`` and
  ``episode.final_reward``): ``step_penalty`` on each step but the last;
  the policy's ``terminate`` (or Algorithm 2 under ``scripted_termination``) ends the episode
  as ``terminated``, the ``max_steps``-th step as ``truncated``. Either way the cell then lifts
  and labels the grasp (drop test and image subtraction, or the simulator's truth, per
  ``SimCellConfig.label``), and the last reward is 1 for a success with the gripper lifted.

Registered as ``qtopt/KukaGrasp-v0`` by :mod:`qtopt_collector.gym_env`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from qtopt_collector.episode import EpisodeConfig, final_reward, take_step
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_policy.episode_record import Termination
from qtopt_policy.spec import (
    ACTION,
    LOW_DIM_STATE,
    Action,
    ActionBounds,
    Observation,
    format_values,
)

# m: the observed fingertip height stays well inside this (the workspace clips commanded
# heights to [min_height, max_height]); a bound keeps RL libraries' normalisers finite.
MAX_ABS_HEIGHT = 1.0
RESET_OPTIONS = ("objects",)  # reset(options=...): objects fixes the number in the bin


@dataclass(frozen=True)
class GraspEnvConfig:
    """The environment: the simulated cell and Algorithm 1's episode rules (App. D.4)."""

    cell: SimCellConfig = field(default_factory=SimCellConfig)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)


def observation_space(cell: SimCellConfig) -> spaces.Dict:
    """The state s of Sec. 5 for frames of ``cell``'s camera."""
    return spaces.Dict({
        "image": spaces.Box(0, 255, (cell.camera_height, cell.camera_width, 3), np.uint8),
        "gripper_closed": spaces.Box(0.0, 1.0, (1,), np.float32),
        "height_to_bottom": spaces.Box(-MAX_ABS_HEIGHT, MAX_ABS_HEIGHT, (1,), np.float32),
    })


def action_space(bounds: ActionBounds) -> spaces.Dict:
    """The action a of Sec. 5 within the workspace bounds (App. D.2)."""
    if not bounds.max_rotation < math.pi / 2:
        raise ValueError(f"max_rotation {bounds.max_rotation}: expected below pi/2 rad for a "
                         "box of (sin, cos)")
    limits = bounds.translation_limits()
    sin, cos = math.sin(bounds.max_rotation), math.cos(bounds.max_rotation)
    return spaces.Dict({
        "world_vector": spaces.Box(-limits, limits, (3,), np.float32),
        # |sin| <= sin(max) and cos >= cos(max) hold for every allowed turn, and every point of
        # this box is one: atan2(s, c) <= atan(sin/cos) = max, so any sample is a valid action.
        "vertical_rotation": spaces.Box(np.array([-sin, cos], np.float32),
                                        np.array([sin, 1.0], np.float32), (2,), np.float32),
        "gripper_close": spaces.Discrete(2),
        "terminate": spaces.Discrete(2),
    })


def observation_dict(observation: Observation) -> dict[str, np.ndarray]:
    """The environment's observation of a state; the low-dim entries through the spec's codec."""
    low_dim = LOW_DIM_STATE.encode_from(observation)
    return {"image": observation.image,
            **{f.name: LOW_DIM_STATE.block(low_dim, f.name) for f in LOW_DIM_STATE.fields}}


def to_observation(observation: Mapping[str, Any]) -> Observation:
    """The state of an environment observation, for the project's policies
    (``Policy.select_action``)."""
    low_dim = LOW_DIM_STATE.encode(**{f.name: observation[f.name] for f in LOW_DIM_STATE.fields})
    return Observation(np.asarray(observation["image"]),
                       bool(LOW_DIM_STATE.entry(low_dim, "gripper_closed") > 0.5),
                       float(LOW_DIM_STATE.entry(low_dim, "height_to_bottom")))


def action_dict(action: Action) -> dict[str, np.ndarray | int]:
    """The environment's action for an :class:`Action` (e.g. a project policy's choice)."""
    vector = action.to_vector()
    return {"world_vector": ACTION.block(vector, "world_vector"),
            "vertical_rotation": ACTION.block(vector, "vertical_rotation"),
            "gripper_close": int(action.gripper_close), "terminate": int(action.terminate)}


def to_action(action: Mapping[str, Any], space: spaces.Dict) -> Action:
    """The :class:`Action` of an environment action; raise ValueError naming the first entry
    outside ``space``."""
    if not isinstance(action, Mapping) or set(action) != set(space.spaces):
        keys = sorted(map(str, action)) if isinstance(action, Mapping) else type(action).__name__
        raise ValueError(f"action {keys}: expected a dict with keys {sorted(space.spaces)}")
    for name, sub in space.spaces.items():
        value = action[name]
        if isinstance(sub, spaces.Discrete):
            if not sub.contains(value):
                raise ValueError(f"action {name} {value!r}: expected an integer 0 or 1")
            continue
        try:
            # float32, the space's dtype: a float64 bound such as sin(max_rotation) then fits.
            block = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            block = None
        if block is None or not sub.contains(block):
            shown = format_values(block.ravel()) if block is not None else repr(value)
            raise ValueError(f"action {name} {shown}: expected {sub.shape[0]} values in "
                             f"[{format_values(sub.low)}, {format_values(sub.high)}]")
    gripper_close = float(action["gripper_close"])
    return Action.from_vector(ACTION.encode(
        world_vector=action["world_vector"], vertical_rotation=action["vertical_rotation"],
        gripper_close=gripper_close, gripper_open=1.0 - gripper_close,
        terminate=float(action["terminate"])))


class GraspEnv(gymnasium.Env):
    """One simulated grasping cell (:class:`SimCell`) run as Algorithm 1's MDP, step by step.

    ``reset(seed=s)`` builds the bin of ``run_episode(cell, policy, seed=s)``, so an episode
    here and one of the episode loop with the same seed and actions are the same episode.
    ``info`` of an episode's last step holds the label: ``is_success`` (the cell's label, as
    RL libraries read it), ``ground_truth`` and ``termination``."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, config: GraspEnvConfig = GraspEnvConfig(),
                 render_mode: str | None = None) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode {render_mode!r}: expected None or one of "
                             f"{self.metadata['render_modes']}")
        self.config = config
        self.render_mode = render_mode
        # One frame per action, which lasts substeps physics steps of 1/240 s.
        self.metadata = {**self.metadata, "render_fps": 240.0 / config.cell.substeps}
        self.observation_space = observation_space(config.cell)
        self.action_space = action_space(config.cell.bounds)
        self.cell = SimCell(config.cell)
        self._observation: Observation | None = None  # None: no episode running
        self._steps = 0

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray],
                                                              dict[str, Any]]:
        """Start an episode in a bin built from ``seed`` (drawn from the environment's generator
        when None); ``options={"objects": n}`` fixes the number of objects."""
        super().reset(seed=seed)
        options = options or {}
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"reset options {unknown}: expected only {list(RESET_OPTIONS)}")
        episode_seed = seed if seed is not None else int(self.np_random.integers(2**31))
        self._observation = self.cell.reset(episode_seed, options.get("objects"))
        self._steps = 0
        return observation_dict(self._observation), {
            "seed": episode_seed, "object_ids": list(self.cell.object_ids)}

    def step(self, action: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], float, bool,
                                                       bool, dict[str, Any]]:
        if self._observation is None:
            raise RuntimeError("step() without a running episode: expected reset() first")
        episode = self.config.episode
        self._observation, stop = take_step(
            self.cell, self._observation, to_action(action, self.action_space), episode)
        self._steps += 1
        truncated = stop is None and self._steps >= episode.max_steps
        observation = observation_dict(self._observation)
        if stop is None and not truncated:
            return observation, float(episode.step_penalty), False, False, {}
        label = self.cell.label_grasp()
        reward = final_reward(label.success, self._observation.height_to_bottom, episode)
        self._observation = None
        info = {"is_success": label.success, "ground_truth": label.ground_truth,
                "termination": Termination.MAX_STEPS if truncated else stop}
        return observation, float(reward), stop is not None, truncated, info

    def render(self) -> np.ndarray | None:
        """The camera's frame (``rgb_array``); None without a render mode."""
        return self.cell.render() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        self.cell.close()
