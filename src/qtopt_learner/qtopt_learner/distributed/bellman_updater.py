"""Bellman-updater workers (Kalashnikov et al. 2018, Sec. 4.3, App. F.4).

A worker samples transitions from the replay service, augments s and s' with one draw, computes
Q_T = r + gamma * min_i Q_bar_i(s', argmax_a Q_bar_1(s', a)) with CEM on its *own* copy of the
target networks, and writes (s, a, Q_T) into the train ring. It reloads the targets at its own
pace (every ``reload_every`` batches), so labels come from an ensemble of lagged networks; the
step of the copy used is written with every sample and reported to the variable source.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from qtopt_learner.augmentation import apply_augmentation, draw_augmentation
from qtopt_learner.distributed.replay import Batch
from qtopt_learner.distributed.roles import LabelRing, ReplayService, StopSignal, VariableSource
from qtopt_learner.learner_config import BellmanUpdaterConfig
from qtopt_learner.targets import (
    bellman_targets,
    lower_bounded,
    next_state_values,
)
from qtopt_learner.trainer import LabeledBatch, TargetSnapshot
from qtopt_policy.cem_actor import CEMActor, StateBatch
from qtopt_policy.qnetwork import QNetwork, QNetworkConfig
from qtopt_policy.spec import ActionBounds

IDLE_SLEEP_S = 0.02


class BellmanUpdater:
    """Labels transitions with Bellman targets from its own target-network copies."""

    def __init__(
        self,
        network: QNetworkConfig,
        bounds: ActionBounds = ActionBounds(),
        config: BellmanUpdaterConfig = BellmanUpdaterConfig(),
        device: torch.device | str = "cpu",
        seed: int = 0,
        name: str = "updater-0",
    ) -> None:
        self.config = config
        self.image_size = network.image_size
        self.device = torch.device(device)
        self.name = name
        self._target_1 = QNetwork(network).to(self.device).eval()
        self._target_2 = QNetwork(network).to(self.device).eval()
        self._actor = CEMActor(self._target_1, bounds, config.cem, self.device)
        self._generator = torch.Generator().manual_seed(seed)
        self.target_step = -1  # no targets loaded yet
        self.labeled = 0

    def load_targets(self, snapshot: TargetSnapshot) -> None:
        self._target_1.load_state_dict(snapshot.target_1)
        self._target_2.load_state_dict(snapshot.target_2)
        self.target_step = snapshot.step

    def label(self, batch: Batch) -> LabeledBatch:
        """Augment s and s' alike, then Q_T for every transition of ``batch``."""
        if self.target_step < 0:
            raise RuntimeError(f"{self.name}: no target networks loaded yet")
        n = len(batch.rewards)
        frames = torch.from_numpy(batch.images)
        draw = draw_augmentation(n, tuple(frames.shape[1:3]), self.image_size,
                                 self.config.augment, self._generator)
        images = apply_augmentation(frames, draw, self.image_size)
        next_images = apply_augmentation(torch.from_numpy(batch.next_images), draw,
                                         self.image_size)
        next_states = StateBatch(next_images.to(self.device),
                                 torch.from_numpy(batch.next_low_dim).to(self.device))
        values = next_state_values(self._actor, self._target_2, next_states, self.config.target,
                                   generator=self._generator).cpu()
        targets = bellman_targets(torch.from_numpy(batch.rewards), torch.from_numpy(batch.dones),
                                  values, self.config.target.gamma)
        if self.config.target.mc_lower_bound:
            targets = lower_bounded(targets, torch.from_numpy(batch.returns))
        self.labeled += n
        return LabeledBatch(images.numpy(), batch.low_dim, batch.actions,
                            targets.numpy().astype(np.float32),
                            np.full(n, self.target_step, dtype=np.int64))

    def run(self, replay: ReplayService, ring: LabelRing, variables: VariableSource,
            stop: StopSignal, max_batches: int | None = None) -> int:
        """Label transitions from ``replay`` into ``ring`` with the targets of ``variables``
        until ``stop`` (or ``max_batches``); return the number of batches labeled."""
        done = 0
        while max_batches is None or done < max_batches:
            if done % self.config.reload_every == 0 or self.target_step < 0:
                snapshot = variables.latest_targets(self.target_step)
                if snapshot is not None:
                    self.load_targets(snapshot)
                    variables.report_reload(self.name, snapshot.step)
            batch = replay.sample_transitions(self.config.batch_size) \
                if self.target_step >= 0 else None
            if batch is None:
                if stop.stopped():
                    break
                time.sleep(IDLE_SLEEP_S)
                continue
            done += 1
            if not ring.write_labeled(self.label(batch)):  # False: the learner stopped
                break
        return done
