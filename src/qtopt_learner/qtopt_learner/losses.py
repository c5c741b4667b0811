"""Q-function losses as pure functions (Kalashnikov et al. 2018, Sec. 4.1, App. C).

QT-Opt trains the sigmoid Q-network with the cross-entropy between Q(s, a) and the Bellman
target; the squared loss is kept for the ablation. Targets r + gamma V(s') fall in
[-0.05, 1] with the step penalty; the cross-entropy is only bounded for targets in [0, 1], so
targets are clipped to that range first (a Q value is a success probability, never negative).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def clip_targets(targets: torch.Tensor) -> torch.Tensor:
    return targets.clamp(0.0, 1.0)


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy between sigmoid(logits) and the clipped targets. [B] -> []."""
    return F.binary_cross_entropy_with_logits(logits, clip_targets(targets))


def squared_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error between sigmoid(logits) and the targets (ablation). [B] -> []."""
    return F.mse_loss(torch.sigmoid(logits), targets)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": cross_entropy_loss,
    "squared": squared_loss,
}


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name not in LOSSES:
        raise ValueError(f"loss {name!r}: expected one of {sorted(LOSSES)}")
    return LOSSES[name]
