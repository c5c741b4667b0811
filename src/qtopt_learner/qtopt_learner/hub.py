"""The learner's shared state (Sec. 4.3, Fig. 3): replay buffers, train ring, target networks.

Log-replay readers, online ingest, Bellman updaters and the trainer only talk to a :class:`Hub`.
:class:`LocalHub` is the in-process implementation (thread-safe); the Ray engine runs the very
same class inside an actor and hands workers a proxy with the same methods, so every worker
runs one code path at every scale.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from qtopt_collector.episode import EpisodeConfig, relabel_rewards
from qtopt_learner.replay import Batch, EpisodeReplay, ReplayConfig, ReplayMixer
from qtopt_learner.train_ring import LabeledBatch, TrainRing
from qtopt_policy.episode_record import EpisodeRecord
from qtopt_policy.spec import STEP_PENALTY

OFFLINE, ONLINE = "offline", "online"


@dataclass(frozen=True)
class TargetSnapshot:
    """Weights of Q_bar_1 (Polyak) and Q_bar_2 (lagged) at a trainer step."""

    step: int
    target_1: dict[str, torch.Tensor]
    target_2: dict[str, torch.Tensor]


@dataclass(frozen=True)
class HubConfig:
    offline: ReplayConfig = field(default_factory=ReplayConfig)
    online: ReplayConfig = field(default_factory=ReplayConfig)
    # Labeled samples in the train ring: small, so the trainer fits recent labels (a 10k ring
    # held labels from targets hundreds of steps old and slowed convergence several-fold).
    train_capacity: int = 1000
    seed: int = 0
    # App. C ablation on recorded data: recompute every episode's rewards with this step
    # penalty (0: the discount alone) instead of using the rewards in the bags.
    relabel_rewards: bool = False
    step_penalty: float = STEP_PENALTY


class Hub(Protocol):
    def add_episodes(self, name: str, records: list[EpisodeRecord]) -> None: ...
    def set_on_policy_fraction(self, fraction: float) -> None: ...
    def sample_transitions(self, n: int) -> Batch | None: ...
    def write_labeled(self, batch: LabeledBatch) -> bool: ...
    def sample_train(self, n: int, min_size: int = 1) -> LabeledBatch | None: ...
    def publish_targets(self, snapshot: TargetSnapshot) -> None: ...
    def latest_targets(self, have_step: int) -> TargetSnapshot | None: ...
    def report_reload(self, worker: str, step: int) -> None: ...
    def publish_model(self, announcement: Any) -> None: ...
    def report_status(self, status: dict[str, float]) -> None: ...
    def trainer_status(self) -> dict[str, float]: ...
    def latest_model(self) -> Any: ...
    def stats(self) -> dict[str, float]: ...
    def stop(self) -> None: ...
    def stopped(self) -> bool: ...


class LocalHub:
    """In-process hub: named FIFO episode buffers, the train ring and the latest targets."""

    def __init__(self, config: HubConfig = HubConfig()) -> None:
        self.config = config
        self.buffers = {OFFLINE: EpisodeReplay(OFFLINE, config.offline),
                        ONLINE: EpisodeReplay(ONLINE, config.online)}
        self.mixer = ReplayMixer(self.buffers, {OFFLINE: 1.0, ONLINE: 0.0})
        self.train = TrainRing(config.train_capacity)
        self._rng = np.random.default_rng(config.seed)
        self._train_rng = np.random.default_rng(config.seed + 1)
        self._targets: TargetSnapshot | None = None
        self._reloads: dict[str, int] = {}
        self._model: Any = None
        self._status: dict[str, float] = {}
        self._replay_lock = threading.Lock()
        self._stop = threading.Event()

    def add_episodes(self, name: str, records: list[EpisodeRecord]) -> None:
        if name not in self.buffers:
            raise ValueError(f"replay buffer {name!r}: expected one of {sorted(self.buffers)}")
        if self.config.relabel_rewards:
            relabel = EpisodeConfig(step_penalty=self.config.step_penalty)
            records = [relabel_rewards(r, relabel) if r.steps else r for r in records]
        with self._replay_lock:
            for record in records:
                if record.steps:
                    self.buffers[name].add(record)

    def set_on_policy_fraction(self, fraction: float) -> None:
        """App. F.3: the share of each sampled batch drawn from the online buffer."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"on-policy fraction {fraction}: expected a value in [0, 1]")
        with self._replay_lock:
            self.mixer.weights = {OFFLINE: 1.0 - fraction, ONLINE: fraction}

    def sample_transitions(self, n: int) -> Batch | None:
        with self._replay_lock:
            if not any(len(self.buffers[k]) for k, w in self.mixer.weights.items() if w > 0):
                return None
            return self.mixer.sample(n, self._rng)[0]

    def write_labeled(self, batch: LabeledBatch) -> bool:
        self.train.add(batch)
        return not self._stop.is_set()

    def sample_train(self, n: int, min_size: int = 1) -> LabeledBatch | None:
        """``n`` labeled samples, or None while the ring holds fewer than ``min_size``."""
        if len(self.train) < max(min_size, 1):
            return None
        return self.train.sample(n, self._train_rng)

    def publish_targets(self, snapshot: TargetSnapshot) -> None:
        self._targets = snapshot

    def latest_targets(self, have_step: int) -> TargetSnapshot | None:
        snapshot = self._targets
        if snapshot is None or snapshot.step == have_step:
            return None
        return snapshot

    def report_reload(self, worker: str, step: int) -> None:
        self._reloads[worker] = step

    def publish_model(self, announcement: Any) -> None:
        """Record the newest exported model (a training_loop.ModelAnnouncement)."""
        self._model = announcement

    def latest_model(self) -> Any:
        return self._model

    def report_status(self, status: dict[str, float]) -> None:
        """The trainer's latest scalars (step, loss, ..., waiting) for status displays."""
        self._status = {**self._status, **status}

    def trainer_status(self) -> dict[str, float]:
        return dict(self._status)

    def stats(self) -> dict[str, float]:
        with self._replay_lock:
            out: dict[str, float] = {}
            for name, buffer in self.buffers.items():
                out[f"{name}_transitions"] = buffer.transitions
                out[f"{name}_episodes_added"] = buffer.episodes_added
                out[f"{name}_transitions_added"] = buffer.transitions_added
                out[f"{name}_bytes"] = buffer.nbytes
        out["train_size"] = len(self.train)
        out["train_written"] = self.train.written
        out["train_sampled"] = self.train.sampled
        out["published_step"] = self._targets.step if self._targets is not None else 0
        out["on_policy_fraction"] = self.mixer.weights[ONLINE]
        out["updaters_reporting"] = len(self._reloads)
        if self._reloads:
            out["updater_target_step_min"] = min(self._reloads.values())
        return out

    def stop(self) -> None:
        self._stop.set()

    def stopped(self) -> bool:
        return self._stop.is_set()
