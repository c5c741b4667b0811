"""The QT-Opt training worker's update (Kalashnikov et al. 2018, Sec. 4.1, App. E-F).

SGD with momentum 0.9, lr 1e-4 and L2 7e-5 on the cross-entropy between Q_theta(s, a) and the
labels the Bellman updaters wrote (:class:`LabeledBatch`). After every step Q_bar_1 moves
towards theta by Polyak averaging (0.9999); Q_bar_2 is a copy of Q_bar_1 from about
``target_lag_steps`` steps ago (snapshots every quarter lag, so the lag stays within
[lag, 1.25 lag]). Both go to the Bellman updaters as a :class:`TargetSnapshot`.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch

from qtopt_learner.learner_config import TrainerConfig
from qtopt_learner.losses import loss_function
from qtopt_policy.qnetwork import QNetwork, QNetworkConfig, preprocess_images


class LabeledBatch(NamedTuple):
    """(s, a, Q_T) triples as the Bellman updaters write them (App. F.4)."""

    images: np.ndarray  # uint8 [B, S, S, 3], augmented crop of s
    low_dim: np.ndarray  # float32 [B, 2]
    actions: np.ndarray  # float32 [B, ACTION_DIM]
    targets: np.ndarray  # float32 [B]: r + gamma V(s')
    target_steps: np.ndarray  # int64 [B]: trainer step of the target network used

    def __len__(self) -> int:
        return len(self.targets)


@dataclass(frozen=True)
class TargetSnapshot:
    """Weights of Q_bar_1 (Polyak) and Q_bar_2 (lagged) at a trainer step."""

    step: int
    target_1: dict[str, torch.Tensor]
    target_2: dict[str, torch.Tensor]


@dataclass(frozen=True)
class StepMetrics:
    """Scalars of one SGD step."""

    loss: float
    q_mean: float  # mean sigmoid Q(s, a) over the batch
    target_mean: float
    target_lag: float  # steps between this step and the targets that labeled the batch


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


class Trainer:
    """Online network theta, Polyak target Q_bar_1, lagged target Q_bar_2, optimizer, step."""

    def __init__(self, network: QNetworkConfig, config: TrainerConfig = TrainerConfig(),
                 device: torch.device | str = "cpu", distributed: bool = False) -> None:
        """``distributed``: the process group is initialized and this is one of several
        training workers; gradients are averaged by DistributedDataParallel (App. F: the paper
        trained on 10 GPUs), so every worker keeps identical weights and targets."""
        self.network_config = network
        self.config = config
        self.device = torch.device(device)
        self.online = QNetwork(network).to(self.device).train()
        self.target_1 = copy.deepcopy(self.online).eval()
        for p in self.target_1.parameters():
            p.requires_grad_(False)
        self._model: torch.nn.Module = self.online
        if distributed:
            self._model = torch.nn.parallel.DistributedDataParallel(self.online)
        self.optimizer = torch.optim.SGD(self.online.parameters(), lr=config.lr,
                                         momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        self._loss = loss_function(config.loss)
        # (Q_bar_1 tensor, theta tensor) pairs, parameters and BN buffers alike; built once,
        # they alias the modules' storage, which load_state_dict updates in place.
        online_state = self.online.state_dict()
        self._target_pairs = [(t, online_state[k]) for k, t in self.target_1.state_dict().items()]
        self.step = 0
        # (step, Q_bar_1 weights) snapshots; the oldest one at least the lag old is Q_bar_2.
        self._history: deque[tuple[int, dict[str, torch.Tensor]]] = deque(
            [(0, _cpu_state(self.target_1))])

    @property
    def _snapshot_every(self) -> int:
        return max(1, self.config.target_lag_steps // 4)

    def train_step(self, batch: LabeledBatch) -> StepMetrics:
        """One SGD step on a labeled batch."""
        images = preprocess_images(torch.from_numpy(batch.images).to(self.device))
        low_dim = torch.from_numpy(batch.low_dim).to(self.device)
        actions = torch.from_numpy(batch.actions).to(self.device)
        targets = torch.from_numpy(batch.targets).to(self.device)
        logits = self._model(images, low_dim, actions)
        loss = self._loss(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        self._update_targets()
        return StepMetrics(
            loss=float(loss.detach()),
            q_mean=float(torch.sigmoid(logits.detach()).mean()),
            target_mean=float(targets.mean()),
            target_lag=float(self.step - np.mean(batch.target_steps)),
        )

    @torch.no_grad()
    def _update_targets(self) -> None:
        for target, online in self._target_pairs:
            if target.is_floating_point():
                target.lerp_(online, 1.0 - self.config.polyak)
            else:
                target.copy_(online)
        if self.step % self._snapshot_every == 0:
            self._history.append((self.step, _cpu_state(self.target_1)))
            while len(self._history) > 1 and \
                    self._history[1][0] <= self.step - self.config.target_lag_steps:
                self._history.popleft()

    @property
    def target_2_step(self) -> int:
        return self._history[0][0]

    def target_snapshot(self) -> TargetSnapshot:
        return TargetSnapshot(self.step, _cpu_state(self.target_1), self._history[0][1])

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "online": self.online.state_dict(),
            "target_1": self.target_1.state_dict(),
            "history": list(self._history),
            "optimizer": self.optimizer.state_dict(),
            "trainer_config": asdict(self.config),
            "network_config": self.network_config.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if QNetworkConfig.from_dict(state["network_config"]) != self.network_config:
            raise ValueError(f"checkpoint network {state['network_config']}: expected "
                             f"{self.network_config.to_dict()}")
        self.online.load_state_dict(state["online"])
        self.target_1.load_state_dict(state["target_1"])
        self._history = deque((int(s), w) for s, w in state["history"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
