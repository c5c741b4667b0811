"""One object playing every role of :mod:`qtopt_learner.distributed.roles` (Sec. 4.3,
Fig. 3): the named replay buffers, the train ring, the target and policy variables and the
trainer's status, thread-safe.

The in-process engine shares one :class:`LocalHub` between its threads; the Ray engine runs
the very same class inside an actor and hands workers a proxy with the same methods, so every
worker runs one code path at every scale.
"""

from __future__ import annotations

import threading

import numpy as np

from qtopt_collector.episode import relabel_rewards
from qtopt_learner.distributed.replay import Batch, EpisodeReplay, ReplayMixer
from qtopt_learner.distributed.roles import (
    OFFLINE,
    ONLINE,
    BufferStats,
    ModelAnnouncement,
    ReplayStats,
    RingStats,
    TrainerStatus,
    VariableStats,
)
from qtopt_learner.distributed.train_ring import TrainRing
from qtopt_learner.learner_config import HubConfig
from qtopt_learner.trainer import LabeledBatch, TargetSnapshot
from qtopt_policy.episode_record import EpisodeRecord


class LocalHub:
    """Every role in one process: named FIFO episode buffers, the train ring, the latest
    targets and model, the trainer's status and the stop signal."""

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
        self._model: ModelAnnouncement | None = None
        self._status = TrainerStatus()
        self._replay_lock = threading.Lock()
        self._stop = threading.Event()

    def add_episodes(self, name: str, records: list[EpisodeRecord]) -> None:
        if name not in self.buffers:
            raise ValueError(f"replay buffer {name!r}: expected one of {sorted(self.buffers)}")
        if self.config.relabel_rewards:
            records = [relabel_rewards(r, self.config.step_penalty) for r in records]
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

    def publish_model(self, announcement: ModelAnnouncement) -> None:
        self._model = announcement

    def latest_model(self) -> ModelAnnouncement | None:
        return self._model

    def report_status(self, status: TrainerStatus) -> None:
        self._status = status

    def trainer_status(self) -> TrainerStatus:
        return self._status

    def replay_stats(self) -> ReplayStats:
        with self._replay_lock:
            return ReplayStats(_buffer_stats(self.buffers[OFFLINE]),
                               _buffer_stats(self.buffers[ONLINE]), self.mixer.weights[ONLINE])

    def ring_stats(self) -> RingStats:
        return RingStats(len(self.train), self.train.written, self.train.sampled)

    def variable_stats(self) -> VariableStats:
        return VariableStats(self._targets.step if self._targets is not None else 0,
                             len(self._reloads),
                             min(self._reloads.values()) if self._reloads else None)

    def stop(self) -> None:
        self._stop.set()

    def stopped(self) -> bool:
        return self._stop.is_set()


def _buffer_stats(buffer: EpisodeReplay) -> BufferStats:
    return BufferStats(buffer.transitions, buffer.episodes_added, buffer.transitions_added,
                       buffer.nbytes)
