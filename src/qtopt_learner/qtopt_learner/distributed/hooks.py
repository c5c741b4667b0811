"""The training worker's duties around its steps, as hooks on the training loop (Sec. 4.3,
App. F.1): logging (TensorBoard, the history, the status board, a progress bar), crash-safe
checkpoints, and TorchScript exports of Q_bar_1 for the policies. The loop's leader (rank 0)
calls them in order; :class:`Exporter` calls its ``listeners`` with every export, which is how
the learner node hears of a new model without polling.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from qtopt_learner.distributed.checkpoint import (
    load_latest_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from qtopt_learner.distributed.roles import (
    Hub,
    LabelRing,
    ModelAnnouncement,
    ReplayService,
    ReplayStats,
    RingStats,
    VariableSource,
    VariableStats,
)
from qtopt_learner.learner_layout import LearnerLayout
from qtopt_learner.trainer import StepMetrics
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import ModelMetadata, export_model, weights_path

if TYPE_CHECKING:  # the loop imports the hooks
    from qtopt_learner.distributed.training_loop import TrainingLoop

ModelCallback = Callable[[ModelAnnouncement], None]


class TrainingHook:
    """A duty of the training loop's leader; each method does nothing unless overridden."""

    def begin(self, loop: TrainingLoop, hub: Hub) -> None:
        """A run starts, before its first step."""

    def after_step(self, loop: TrainingLoop, metrics: StepMetrics) -> None:
        """The trainer took step ``loop.trainer.step``."""

    def close(self) -> None:
        """The run ended, by its last step, a stop or an exception: release what ``begin``
        opened."""

    def end(self, loop: TrainingLoop) -> None:
        """The run reached its last step or was stopped (not after an exception)."""


@dataclass(frozen=True)
class TrainingRecord:
    """What :class:`TrainingLogger` records every ``log_every`` steps."""

    step: int
    metrics: StepMetrics
    steps_per_s: float  # since the previous record
    waited_s: float  # the run's time spent waiting for data so far
    target_2_lag: int  # steps Q_bar_2 lags behind the trainer
    replay: ReplayStats
    ring: RingStats
    variables: VariableStats


class TrainingLogger(TrainingHook):
    """Every ``every`` steps: a :class:`TrainingRecord` in ``history`` and TensorBoard
    (``losses/``, ``charts/``, ``buffers/`` under ``directory``), and the metrics on the
    status board; a console progress bar when ``progress``."""

    def __init__(self, directory: Path, every: int, progress: bool) -> None:
        self.directory = directory
        self.every = every
        self.progress = progress
        self.history: list[TrainingRecord] = []

    def begin(self, loop: TrainingLoop, hub: Hub) -> None:
        self._replay: ReplayService = hub
        self._ring: LabelRing = hub
        self._variables: VariableSource = hub
        step = loop.trainer.step
        self._writer = SummaryWriter(str(self.directory), purge_step=step)
        self._bar = tqdm(total=loop.target, initial=step, desc="train", unit="step",
                         disable=not self.progress, dynamic_ncols=True)
        self._window = (time.monotonic(), step)

    def after_step(self, loop: TrainingLoop, metrics: StepMetrics) -> None:
        self._bar.update(1)
        step = loop.trainer.step
        if step % self.every:
            return
        now = time.monotonic()
        start, start_step = self._window
        self._window = (now, step)
        record = TrainingRecord(step, metrics, (step - start_step) / max(now - start, 1e-9),
                                loop.waited_s, step - loop.trainer.target_2_step,
                                self._replay.replay_stats(), self._ring.ring_stats(),
                                self._variables.variable_stats())
        self.history.append(record)
        loop.report(step=step, target_steps=loop.target, loss=metrics.loss,
                    q_mean=metrics.q_mean, target_mean=metrics.target_mean,
                    target_lag=metrics.target_lag, steps_per_s=record.steps_per_s)
        self._write(record)
        self._bar.set_postfix(loss=f"{metrics.loss:.3f}", q=f"{metrics.q_mean:.2f}",
                              lag=f"{metrics.target_lag:.0f}")

    def _write(self, record: TrainingRecord) -> None:
        step, metrics, writer = record.step, record.metrics, self._writer
        writer.add_scalar("losses/loss", metrics.loss, step)
        for key, value in (("q_mean", metrics.q_mean), ("target_mean", metrics.target_mean),
                           ("target_lag", metrics.target_lag),
                           ("steps_per_s", record.steps_per_s),
                           ("target_2_lag", record.target_2_lag)):
            writer.add_scalar(f"charts/{key}", value, step)
        replay, ring = record.replay, record.ring
        for key, value in (("offline_transitions", replay.offline.transitions),
                           ("online_transitions", replay.online.transitions),
                           ("online_episodes_added", replay.online.episodes_added),
                           ("train_size", ring.size), ("train_written", ring.written),
                           ("train_sampled", ring.sampled)):
            writer.add_scalar(f"buffers/{key}", value, step)
        writer.add_scalar("charts/waited_s", record.waited_s, step)

    def close(self) -> None:
        self._bar.close()
        self._writer.close()


class PeriodicHook(TrainingHook):
    """Acts every ``every`` steps, and when a run ends on a step it has not acted at (the next
    run, or a resumed one, goes on from that step)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.done_step = -1  # the step it last acted at

    def act(self, loop: TrainingLoop) -> None:
        raise NotImplementedError

    def fire(self, loop: TrainingLoop) -> None:
        self.done_step = loop.trainer.step
        self.act(loop)

    def after_step(self, loop: TrainingLoop, metrics: StepMetrics) -> None:
        if loop.trainer.step % self.every == 0:
            self.fire(loop)

    def end(self, loop: TrainingLoop) -> None:
        if loop.trainer.step > 0 and self.done_step != loop.trainer.step:
            self.fire(loop)


class Checkpointer(PeriodicHook):
    """Crash-safe checkpoints in ``directory``: the trainer (model, optimizer, both targets,
    step), the RNGs, the step fine-tuning started at and the config."""

    def __init__(self, directory: Path, every: int) -> None:
        super().__init__(every)
        self.directory = directory

    def restore(self, loop: TrainingLoop) -> Path | None:
        """Load the newest loadable checkpoint into ``loop``; its path, None when there is
        none."""
        loaded = load_latest_checkpoint(self.directory)
        if loaded is None:
            return None
        path, state = loaded
        loop.trainer.load_state_dict(state["trainer"])
        set_rng_state(state["rng"])
        loop.fine_tune_start = state.get("fine_tune_start")
        self.done_step = loop.trainer.step
        return path

    def act(self, loop: TrainingLoop) -> None:
        save_checkpoint(self.directory, loop.trainer.step, {
            "trainer": loop.trainer.state_dict(),
            "rng": rng_state(),
            "fine_tune_start": loop.fine_tune_start,
            "config": loop.config.to_json(),
        })


def _link_as(path: Path, name: Path) -> None:
    """Give ``path`` the second name ``name`` (replacing it atomically): no second write."""
    tmp = name.with_name(f".{name.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    os.link(path, tmp)
    os.replace(tmp, name)


class Exporter(PeriodicHook):
    """TorchScript of Q_bar_1 (the policy network, Sec. 4.2) as ``models/model-<step>.pt``
    (kept, for learning curves) and ``model.pt`` (the latest) in a learner layout, each with its
    safetensors weights beside it; announced on the variable source and to every listener
    (App. F.1: the robots reload it)."""

    def __init__(self, layout: LearnerLayout, every: int) -> None:
        super().__init__(every)
        self.layout = layout
        self.listeners: list[ModelCallback] = []

    def begin(self, loop: TrainingLoop, hub: Hub) -> None:
        self._variables: VariableSource = hub
        if loop.resumed_from is not None and self.done_step < 0:
            self._drop_exports_after(loop.trainer.step)
            self.fire(loop)  # policies learn the resumed model before the next export

    def _drop_exports_after(self, step: int) -> None:
        """Exports newer than the checkpoint a run resumes from came from the steps it lost;
        they would pass for its latest model."""
        for export, path in self.layout.exports():
            if export > step:
                path.unlink()
                weights_path(path).unlink(missing_ok=True)

    def act(self, loop: TrainingLoop) -> None:
        step, cfg = loop.trainer.step, loop.config
        metadata = ModelMetadata(preset=cfg.preset, network=cfg.network, bounds=ActionBounds(),
                                 cem=cfg.updater.cem, version=step, training_step=step,
                                 camera=cfg.camera if cfg.camera.known else None,
                                 label_source=cfg.label_source, termination=cfg.termination)
        path = self.layout.model_at(step)
        sha = export_model(loop.trainer.target_1, path, metadata)
        latest = self.layout.latest_model
        # The weights first, as export_model writes them: model.pt always has its weights.
        _link_as(weights_path(path), weights_path(latest))
        _link_as(path, latest)
        announcement = ModelAnnouncement(str(path.resolve()), step, sha, step)
        self._variables.publish_model(announcement)
        for listener in self.listeners:
            listener(announcement)
