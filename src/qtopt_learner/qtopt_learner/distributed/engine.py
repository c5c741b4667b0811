"""The in-process learner (the default on a laptop): log readers and Bellman updaters as
supervised threads around one :class:`~qtopt_learner.distributed.hub.LocalHub`, the training
loop in the caller's thread. The Ray engine (``ray_engine``) runs the same workers as actors;
:class:`Learner` is what both offer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch

from qtopt_learner.distributed.bellman_updater import BellmanUpdater
from qtopt_learner.distributed.hooks import ModelCallback, TrainingRecord
from qtopt_learner.distributed.hub import LocalHub
from qtopt_learner.distributed.log_replay import episode_files, run_log_reader, split_files
from qtopt_learner.distributed.roles import Hub, TrainerStatus
from qtopt_learner.distributed.training_loop import TrainingLoop, TrainingSummary
from qtopt_learner.learner_config import LearnerConfig

log = logging.getLogger(__name__)


class Learner(Protocol):
    """An engine: start the workers, train, hear of exported models, stop."""

    @property
    def hub(self) -> Hub: ...

    @property
    def history(self) -> list[TrainingRecord]: ...

    @property
    def resumed_from(self) -> Path | None: ...

    @property
    def start_step(self) -> int: ...

    def start(self) -> Learner: ...

    def train(self, steps: int | None = None) -> TrainingSummary: ...

    def on_model(self, callback: ModelCallback) -> None:
        """Call ``callback`` with every exported model from now on."""

    def stop(self) -> None: ...

    def __enter__(self) -> Learner: ...

    def __exit__(self, *exc: object) -> None: ...


def make_updater(config: LearnerConfig, index: int, incarnation: int = 0) -> BellmanUpdater:
    """Updater ``index``; a replacement gets a fresh seed so it does not repeat its draws."""
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    return BellmanUpdater(config.network, config=config.updater,
                          device=config.resolved_device(),
                          seed=config.seed * 7919 + index * 104729 + incarnation,
                          name=f"updater-{index}")


def reader_file_sets(config: LearnerConfig) -> list[list[Path]]:
    if not config.offline_paths:
        return []
    files = episode_files(config.offline_paths)
    if not files:
        raise FileNotFoundError(f"no episode files (*.mcap) below {list(config.offline_paths)}")
    readers = min(config.log_replay.readers, len(files))
    return split_files(files, readers, config.log_replay.seed)


class InProcessLearner:
    """Threads for log replay and Bellman updates; ``train`` runs the training loop."""

    def __init__(self, config: LearnerConfig, progress: bool = True) -> None:
        self.config = config
        self.hub = LocalHub(config.hub)
        self.loop = TrainingLoop(config, progress=progress)
        self.updater_restarts = 0
        self._threads: list[threading.Thread] = []

    def start(self) -> InProcessLearner:
        # A resumed run says its step from the start, not 0 until its first log (TrainingStatus).
        self.hub.report_status(TrainerStatus(step=self.start_step))
        for i, files in enumerate(reader_file_sets(self.config)):
            self._spawn(f"log-reader-{i}", lambda f=files, i=i: run_log_reader(
                f, replay=self.hub, stop=self.hub, config=self.config.log_replay, index=i))
        for i in range(self.config.updaters):
            self._spawn(f"updater-{i}", lambda i=i: self._supervise_updater(i))
        return self

    def _spawn(self, name: str, target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _supervise_updater(self, index: int) -> None:
        incarnation = 0
        while not self.hub.stopped():
            try:
                make_updater(self.config, index, incarnation).run(
                    replay=self.hub, ring=self.hub, variables=self.hub, stop=self.hub)
            except Exception:  # a failed worker is replaced, training goes on (App. F)
                log.exception("updater-%d failed; starting a replacement", index)
                self.updater_restarts += 1
                incarnation += 1

    def train(self, steps: int | None = None) -> TrainingSummary:
        return self.loop.run(self.hub, steps)

    def on_model(self, callback: ModelCallback) -> None:
        """``callback`` runs in the training thread, right after each export."""
        self.loop.exporter.listeners.append(callback)

    @property
    def history(self) -> list[TrainingRecord]:
        return self.loop.logger.history

    @property
    def resumed_from(self) -> Path | None:
        return self.loop.resumed_from

    @property
    def start_step(self) -> int:
        return self.loop.start_step

    def stop(self) -> None:
        self.hub.stop()
        for thread in self._threads:
            thread.join(timeout=30)

    def __enter__(self) -> InProcessLearner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_learner(config: LearnerConfig, progress: bool = True) -> Learner:
    """The learner for ``config.engine``: InProcessLearner or RayLearner."""
    if config.engine == "ray":
        # Ray is imported only when used
        from qtopt_learner.distributed.ray_engine import RayLearner
        return RayLearner(config, progress=progress)
    return InProcessLearner(config, progress=progress)
