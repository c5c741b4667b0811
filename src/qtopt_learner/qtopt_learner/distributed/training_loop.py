"""The training worker (Sec. 4.3): sample the train ring, step, publish targets to the
variable source, follow App. F.3's on-policy ramp and training balancer, and on resume continue
from the last checkpoint. Logging, checkpoints and exports are :mod:`.hooks` the leader calls
around its steps; ``loop.exporter.listeners`` hear of every exported model.

Runs against any :class:`~qtopt_learner.distributed.roles.Hub`: in the learner's own process
or inside a Ray actor.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from qtopt_learner.distributed.fine_tuning import TrainingBalancer, on_policy_fraction
from qtopt_learner.distributed.hooks import (
    Checkpointer,
    Exporter,
    TrainingHook,
    TrainingLogger,
    TrainingRecord,
)
from qtopt_learner.distributed.roles import Hub, ReplayService, StatusBoard, TrainerStatus
from qtopt_learner.learner_config import LearnerConfig
from qtopt_learner.trainer import StepMetrics, Trainer

WAIT_S = 0.02


@dataclass(frozen=True)
class TrainingSummary:
    """What a run of the training loop ends with."""

    step: int
    waited_s: float  # time the run spent waiting for data
    last: TrainingRecord | None  # the run's last log record


def init_training_group(init_method: str, rank: int, world_size: int,
                        device: torch.device) -> None:
    """Join the DDP process group of the training workers (NCCL on GPUs, gloo on CPU)."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend, init_method=init_method, rank=rank,
                                         world_size=world_size)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TrainingLoop:
    """Owns the :class:`Trainer` and its hooks; one instance per training worker."""

    def __init__(self, config: LearnerConfig, progress: bool = True, rank: int = 0,
                 world_size: int = 1) -> None:
        """With ``world_size`` > 1 this is training worker ``rank`` of a DDP group (already
        initialized): every rank steps; rank 0 alone publishes targets and runs the hooks."""
        self.config = config
        self.rank = rank
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        seed_everything(config.seed)
        self.trainer = Trainer(config.network, config.trainer, config.resolved_device(),
                               distributed=world_size > 1)
        self.fine_tune_start: int | None = None  # step at which fine-tuning (re)started
        self.balancer: TrainingBalancer | None = None
        self.status = TrainerStatus()
        self.target = config.steps  # the current run's last step
        self.waited_s = 0.0
        self._board: StatusBoard | None = None
        layout = config.layout
        self.logger = TrainingLogger(layout.tensorboard, config.log_every, progress)
        self.checkpointer = Checkpointer(layout.checkpoints, config.checkpoint_every)
        self.exporter = Exporter(layout, config.export_every)
        self.hooks: list[TrainingHook] = [self.logger, self.checkpointer, self.exporter]
        self.resumed_from = self.checkpointer.restore(self)
        self.start_step = self.trainer.step

    def _fine_tuning(self, replay: ReplayService) -> None:
        ft = self.config.fine_tuning
        if not ft.enabled:
            return
        if self.fine_tune_start is None:
            self.fine_tune_start = self.trainer.step
        if self.balancer is None:
            # From where fine-tuning started, over every online transition, those reloaded on a
            # resume included: a restarted learner takes the steps its data allows, no fewer.
            self.balancer = TrainingBalancer(ft, self.fine_tune_start, 0)
        replay.set_on_policy_fraction(on_policy_fraction(
            self.trainer.step - self.fine_tune_start, ft))

    def _may_step(self, replay: ReplayService) -> bool:
        if self.balancer is None:
            return True
        return self.balancer.may_step(self.trainer.step,
                                      replay.replay_stats().online.transitions_added)

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def report(self, **changes: int | float | bool) -> None:
        """Change fields of the trainer's status and put it on the status board."""
        self.status = dataclasses.replace(self.status, **changes)
        self._board.report_status(self.status)

    def run(self, hub: Hub, steps: int | None = None) -> TrainingSummary:
        """Train until ``steps`` total gradient steps (default: config.steps)."""
        self.target = self.config.steps if steps is None else steps
        self._board = hub
        trainer = self.trainer
        hooks = self.hooks if self.leader else []
        if self.leader:
            hub.publish_targets(trainer.target_snapshot())
        for hook in hooks:
            hook.begin(self, hub)
        self._fine_tuning(hub)
        self.waited_s, waiting = 0.0, False
        try:
            while trainer.step < self.target and not hub.stopped():
                balanced = self._may_step(hub)
                batch = hub.sample_train(self.config.trainer.batch_size,
                                         self.config.min_train_samples) if balanced else None
                if waiting != (not balanced) and self.leader:
                    self.report(waiting_for_data=not balanced, step=trainer.step)
                waiting = not balanced
                if batch is None:
                    time.sleep(WAIT_S)
                    self.waited_s += WAIT_S
                    continue
                metrics = trainer.train_step(batch)
                if self.leader:
                    self._after_step(hub, hooks, metrics)
        finally:
            for hook in hooks:
                hook.close()
        for hook in hooks:
            hook.end(self)
        if self.leader:
            self.report(step=trainer.step, finished=trainer.step >= self.target)
        history = self.logger.history
        return TrainingSummary(trainer.step, self.waited_s, history[-1] if history else None)

    def _after_step(self, hub: Hub, hooks: list[TrainingHook], metrics: StepMetrics) -> None:
        """Rank 0's duties after a step: targets for the updaters, the hooks, the ramp."""
        cfg, step = self.config, self.trainer.step
        if step % cfg.publish_targets_every == 0:
            hub.publish_targets(self.trainer.target_snapshot())
        for hook in hooks:
            hook.after_step(self, metrics)
        if step % cfg.log_every == 0:  # after the logger: it logs the fraction steps used
            self._fine_tuning(hub)
