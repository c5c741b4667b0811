"""The roles the learner's workers share (Sec. 4.3, Fig. 3, App. E.5, F), in the style of
Acme's ``core.py``: each worker receives, and types against, only the roles it uses.

- :class:`ReplayService` (App. E.5, F.1-F.3): the named FIFO buffers "offline" and "online"
  with weighted sampling. Log readers and online agents add episodes, Bellman updaters sample.
- :class:`LabelRing` (App. F.4): the "train" buffer Bellman updaters write, trainers sample.
- :class:`VariableSource` (Sec. 4.2, App. F.1, F.4): the target networks each updater reloads
  at its own pace, and the exported policy weights the robots reload.
- :class:`StatusBoard`: the training worker's latest :class:`TrainerStatus`.
- :class:`StopSignal`: ends every worker.

One object may play every role (:class:`Hub`): the engines hold
:class:`~qtopt_learner.distributed.hub.LocalHub`, in their own process or as a Ray actor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from qtopt_learner.distributed.replay import Batch
from qtopt_learner.trainer import LabeledBatch, TargetSnapshot
from qtopt_policy.episode_record import EpisodeRecord

OFFLINE, ONLINE = "offline", "online"


@dataclass(frozen=True)
class BufferStats:
    """One named replay buffer."""

    transitions: int  # held now
    episodes_added: int
    transitions_added: int  # ever added: more than ``transitions`` once the FIFO evicted
    nbytes: int


@dataclass(frozen=True)
class ReplayStats:
    offline: BufferStats
    online: BufferStats
    on_policy_fraction: float  # App. F.3: the online buffer's share of every sample


@dataclass(frozen=True)
class RingStats:
    size: int  # labeled samples held
    written: int  # ever written by the Bellman updaters
    sampled: int  # ever sampled by the training workers


@dataclass(frozen=True)
class VariableStats:
    published_step: int  # trainer step of the newest target snapshot; 0 before the first
    updaters_reporting: int  # Bellman updaters that have loaded targets
    updater_target_step_min: int | None  # the oldest targets in use; None before any load


@dataclass(frozen=True)
class ModelAnnouncement:
    """An exported TorchScript policy, Q_bar_1 (App. F.1): what a ModelUpdate message carries."""

    path: str
    version: int
    sha256: str
    training_step: int


@dataclass(frozen=True)
class TrainerStatus:
    """The training worker's latest state, for status displays (TrainingStatus messages)."""

    step: int = 0
    target_steps: int = 0  # the run's last step, once a step was logged
    waiting_for_data: bool = False  # App. F.3: the training balancer holds the trainer
    finished: bool = False  # the run reached target_steps
    # the last logged step's metrics; nan before the first log
    loss: float = math.nan
    q_mean: float = math.nan
    target_mean: float = math.nan
    target_lag: float = math.nan
    steps_per_s: float = math.nan


class ReplayService(Protocol):
    def add_episodes(self, name: str, records: list[EpisodeRecord]) -> None:
        """Append whole episodes to buffer ``name`` (OFFLINE or ONLINE)."""

    def set_on_policy_fraction(self, fraction: float) -> None:
        """App. F.3: the share of each sample drawn from the online buffer."""

    def sample_transitions(self, n: int) -> Batch | None:
        """``n`` transitions across the weighted buffers; None while those are empty."""

    def replay_stats(self) -> ReplayStats: ...


class LabelRing(Protocol):
    def write_labeled(self, batch: LabeledBatch) -> bool:
        """Add labeled samples; False once the learner stops (one call for a remote ring)."""

    def sample_train(self, n: int, min_size: int = 1) -> LabeledBatch | None:
        """``n`` labeled samples, or None while the ring holds fewer than ``min_size``."""

    def ring_stats(self) -> RingStats: ...


class VariableSource(Protocol):
    def publish_targets(self, snapshot: TargetSnapshot) -> None: ...

    def latest_targets(self, have_step: int) -> TargetSnapshot | None:
        """The newest targets, or None when they are those of ``have_step``."""

    def report_reload(self, worker: str, step: int) -> None:
        """``worker`` now labels with the targets of ``step`` (the lag of App. F.4)."""

    def publish_model(self, announcement: ModelAnnouncement) -> None: ...

    def latest_model(self) -> ModelAnnouncement | None: ...

    def variable_stats(self) -> VariableStats: ...


class StatusBoard(Protocol):
    def report_status(self, status: TrainerStatus) -> None: ...

    def trainer_status(self) -> TrainerStatus: ...


class StopSignal(Protocol):
    def stop(self) -> None: ...

    def stopped(self) -> bool: ...


class Hub(ReplayService, LabelRing, VariableSource, StatusBoard, StopSignal, Protocol):
    """Every role in one object: what the engines hold and the training loop runs against."""
