"""Policies behind one protocol (Kalashnikov et al. 2018, Sec. 4.2 and App. B).

- :class:`GreedyCEMPolicy`: pi_eval, argmax_a Q(s, a) by CEM.
- :class:`EpsilonGreedyPolicy`: pi_noisy, a random action with probability epsilon = 0.2,
  drawn as a Gaussian pose change (75 %), a gripper toggle (17 %, with its own pose
  change) or termination (8 %).
- :class:`ScriptedGraspPolicy`: pi_scripted, a random (x, y) above the bin, descend open in a
  few random steps, close, ascend. It needs only the observed gripper height.
- :class:`ExplorationSwitch`: collect with pi_scripted until the running success rate reaches
  50 %, then with the learned policy.
- :class:`PolicySource`: which policy to build where it runs (a local policy by name or greedy
  CEM over a TorchScript file), so that evaluation workers each build their own.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from qtopt_policy.cem_actor import CEMActor, StateBatch
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.names import LOCAL_POLICIES
from qtopt_policy.spec import Action, ActionBounds, Observation
from qtopt_policy.torchscript_model import load_model


@dataclass(frozen=True)
class PolicyOutput:
    action: Action
    q_value: float  # NaN when no Q-network scored the action


@runtime_checkable
class Policy(Protocol):
    name: str

    def reset(self, seed: int) -> None:
        """Start a new episode; seeds the policy's randomness."""

    def select_action(self, observation: Observation, step: int) -> PolicyOutput:
        """Action for the current state at ``step`` (0-based) of the episode."""


class GreedyCEMPolicy:
    """pi_eval: argmax_a Q(s, a) by CEM over the (Polyak-averaged) network."""

    name = "greedy"

    def __init__(self, actor: CEMActor, image_size: int, seed: int = 0) -> None:
        self.actor = actor
        self.image_size = image_size
        self.generator = torch.Generator().manual_seed(seed)

    def reset(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def select_action(self, observation: Observation, step: int) -> PolicyOutput:
        states = StateBatch.from_observations([observation], self.image_size, self.actor.device)
        result = self.actor.argmax(states, generator=self.generator)
        vector = result.actions[0].cpu().numpy()
        return PolicyOutput(Action.from_vector(vector), float(result.values[0]))


@dataclass(frozen=True)
class NoiseConfig:
    """App. B: pi_noisy's exploration."""

    epsilon: float = bounded(0.2, ge=0, le=1)  # probability of a random action, else greedy
    pose_probability: float = bounded(0.75, ge=0, le=1)  # share of random actions: moves
    toggle_probability: float = bounded(0.17, ge=0, le=1)  # share of random actions: toggles
    terminate_probability: float = bounded(0.08, ge=0, le=1)  # share of random actions: stops
    # Gaussian std of a random pose change, as a fraction of the action bound
    pose_std_fraction: float = bounded(0.5, ge=0)
    # A toggle comes with its own Gaussian pose change, so the data holds gripper changes
    # made while moving, which the greedy CEM proposes; a toggle in place never shows them
    # (docs/decisions.md).
    toggle_moves: bool = True

    def __post_init__(self) -> None:
        check_bounds(self)
        total = self.pose_probability + self.toggle_probability + self.terminate_probability
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"random-action probabilities sum to {total}: expected 1")


def random_action(
    rng: np.random.Generator, bounds: ActionBounds, gripper_closed: bool, config: NoiseConfig
) -> Action:
    """One random exploration action of App. B."""
    kind = rng.choice(
        3, p=[config.pose_probability, config.toggle_probability, config.terminate_probability]
    )
    if kind == 2:
        return Action((0.0, 0.0, 0.0), 0.0, gripper_closed, True)
    toggle = kind == 1
    if toggle and not config.toggle_moves:
        return Action((0.0, 0.0, 0.0), 0.0, not gripper_closed, False)
    limits = bounds.translation_limits()
    t = np.clip(rng.normal(0.0, config.pose_std_fraction * limits), -limits, limits)
    r = float(np.clip(rng.normal(0.0, config.pose_std_fraction * bounds.max_rotation),
                      -bounds.max_rotation, bounds.max_rotation))
    return Action(tuple(float(x) for x in t), r, gripper_closed != toggle, False)


class EpsilonGreedyPolicy:
    """pi_noisy: a random action with probability epsilon, else the greedy one."""

    name = "noisy"

    def __init__(self, greedy: Policy, bounds: ActionBounds, config: NoiseConfig = NoiseConfig(),
                 seed: int = 0, name: str = "noisy") -> None:
        self.name = name
        self.greedy = greedy
        self.bounds = bounds
        self.config = config
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.greedy.reset(seed + 1)

    def select_action(self, observation: Observation, step: int) -> PolicyOutput:
        if self.rng.random() < self.config.epsilon:
            action = random_action(self.rng, self.bounds, observation.gripper_closed, self.config)
            return PolicyOutput(action, math.nan)
        return self.greedy.select_action(observation, step)


@dataclass(frozen=True)
class ScriptedConfig:
    """App. B: pi_scripted. Heights in m above the bin floor."""

    xy_range: float = 0.12  # the (x, y) target is drawn within +-xy_range of the start
    min_descent_steps: int = 2  # "a few random descent steps"
    max_descent_steps: int = 5
    grasp_height: float = 0.015  # descend until the fingertips are this close to the floor
    ascent_height: float = 0.25  # ascend to this height after closing, then stop
    rotation_std_fraction: float = 0.3
    # A gripper found closed during the descent (pi_noisy's random toggle under
    # scripted_noisy) is a grasp attempt: lift it and stop, instead of reopening, so the data
    # shows closing in the air failing rather than costing one step (docs/decisions.md).
    lift_after_any_close: bool = True


class ScriptedGraspPolicy:
    """pi_scripted (App. B), closed-loop on the observed gripper height only."""

    name = "scripted"

    def __init__(self, bounds: ActionBounds, config: ScriptedConfig = ScriptedConfig(),
                 seed: int = 0) -> None:
        self.bounds = bounds
        self.config = config
        self.reset(seed)

    def reset(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.xy_remaining = rng.uniform(-self.config.xy_range, self.config.xy_range, size=2)
        self.descent_steps = int(
            rng.integers(self.config.min_descent_steps, self.config.max_descent_steps + 1)
        )
        self.phase = "descend"
        self.steps_in_phase = 0
        self.last_height, self.last_dz = 0.0, 0.0

    def _rotation(self) -> float:
        limit = self.bounds.max_rotation
        return float(np.clip(self.rng.normal(0.0, self.config.rotation_std_fraction * limit),
                             -limit, limit))

    def select_action(self, observation: Observation, step: int) -> PolicyOutput:
        limits = self.bounds.translation_limits()
        height = observation.height_to_bottom
        # Blocked: the last descent step achieved under half of what it commanded.
        blocked = self.last_dz < 0 and (self.last_height - height) < 0.5 * -self.last_dz
        if self.phase == "descend" and (height <= self.config.grasp_height + 0.01 or blocked):
            self.phase = "close"  # at the floor, or resting on an object: close here
        if self.phase in ("descend", "close") and observation.gripper_closed \
                and self.config.lift_after_any_close:
            self.phase, self.last_dz = "ascend", 0.0  # closed by someone else: lift what it holds
        if self.phase == "descend":
            # A few random steps, more when the per-step bound does not reach the floor.
            needed = math.ceil((height - self.config.grasp_height) / limits[2] - 1e-9)
            remaining = max(self.descent_steps - self.steps_in_phase, needed, 1)
            jitter = self.rng.uniform(0.8, 1.2) if remaining > 1 else 1.0
            dz = -(height - self.config.grasp_height) / remaining * jitter
            t = np.clip([*(self.xy_remaining / remaining), dz], -limits, limits)
            self.xy_remaining = self.xy_remaining - t[:2]
            self.steps_in_phase += 1
            self.last_height, self.last_dz = height, float(t[2])
            action = Action(tuple(float(x) for x in t), self._rotation(), False, False)
        elif self.phase == "close":
            self.phase, self.last_dz = "ascend", 0.0
            action = Action((0.0, 0.0, 0.0), 0.0, True, False)
        elif self.phase == "ascend":
            dz = float(min(limits[2], max(self.config.ascent_height - height, 0.0)))
            if height + dz >= self.config.ascent_height - 1e-3:
                self.phase = "stop"
            action = Action((0.0, 0.0, dz), 0.0, True, False)
        else:
            action = Action.stop()
        return PolicyOutput(action, math.nan)


class ExplorationSwitch:
    """App. B: use pi_scripted until the running success rate reaches ``threshold``."""

    def __init__(self, threshold: float = 0.5, window: int = 100, min_episodes: int = 20) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold {threshold}: expected a success rate in (0, 1]")
        self.threshold = threshold
        self.min_episodes = min_episodes
        self.outcomes: deque[bool] = deque(maxlen=window)
        self.switched = False

    @property
    def success_rate(self) -> float:
        return sum(self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

    def record(self, learned_policy_success: bool) -> None:
        """Record an evaluation episode of the learned policy; switching is permanent."""
        self.outcomes.append(bool(learned_policy_success))
        if len(self.outcomes) >= self.min_episodes and self.success_rate >= self.threshold:
            self.switched = True

    def choose(self, scripted: Policy, learned: Policy) -> Policy:
        return learned if self.switched else scripted


def local_policy(name: str, bounds: ActionBounds, seed: int = 0) -> Policy:
    """A policy that needs no Q-network: ``scripted`` (App. B) or ``scripted_noisy``, the
    scripted policy under pi_noisy's epsilon-exploration, whose random terminations, toggles and
    moves give off-policy data the action coverage the scripted policy alone lacks."""
    if name == "scripted":
        return ScriptedGraspPolicy(bounds, seed=seed)
    if name == "scripted_noisy":
        return EpsilonGreedyPolicy(ScriptedGraspPolicy(bounds, seed=seed), bounds, seed=seed,
                                   name=name)
    raise ValueError(f"policy {name!r}: expected one of {LOCAL_POLICIES}")


def greedy_policy(model_path: str, seed: int = 0) -> GreedyCEMPolicy:
    """pi_eval over the TorchScript model at ``model_path`` (Q_bar_1 of the learner's export),
    with the bounds and CEM settings its metadata records."""
    loaded = load_model(model_path)
    actor = CEMActor(loaded.module, loaded.metadata.bounds, loaded.metadata.cem)
    return GreedyCEMPolicy(actor, loaded.metadata.image_size, seed=seed)


@dataclass(frozen=True)
class PolicySource:
    """A policy to build where it runs: ``local`` names a policy that needs no Q-network
    (``LOCAL_POLICIES``), else ``model_path`` is a TorchScript model acted on greedily. It
    pickles, so evaluation workers build their own."""

    local: str = ""
    model_path: str = ""

    def __post_init__(self) -> None:
        if bool(self.local) == bool(self.model_path):
            raise ValueError(f"policy source local {self.local!r}, model_path "
                             f"{self.model_path!r}: expected exactly one of them")
        if self.local and self.local not in LOCAL_POLICIES:
            raise ValueError(f"policy {self.local!r}: expected one of {LOCAL_POLICIES}")

    @classmethod
    def parse(cls, text: str) -> PolicySource:
        """A local policy's name or a model path, as a user types either."""
        return cls(local=text) if text in LOCAL_POLICIES else cls(model_path=text)

    @property
    def name(self) -> str:
        return self.local or self.model_path

    def make(self, seed: int = 0) -> Policy:
        if self.local:
            return local_policy(self.local, ActionBounds(), seed=seed)
        return greedy_policy(self.model_path, seed=seed)
