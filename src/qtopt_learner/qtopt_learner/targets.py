"""Bellman targets of QT-Opt as pure functions (Kalashnikov et al. 2018, Sec. 4.1-4.2).

Q_T(s, a, s') = r + gamma * V(s'), with the clipped double-Q value
V(s') = min_{i=1,2} Q_bar_i(s', a*),  a* = argmax_a Q_bar_1(s', a) by CEM,
where Q_bar_1 is the Polyak average of the trained weights and Q_bar_2 a copy lagged about 6000
steps. Terminal transitions bootstrap nothing. ``clipped_double_q=False`` gives the double-Q
ablation V(s') = Q_bar_1(s', a*) (App. C).
"""

from __future__ import annotations

import torch
from torch import nn

from qtopt_learner.learner_config import TargetConfig
from qtopt_policy.cem import CEMNoise
from qtopt_policy.cem_actor import CEMActor, StateBatch, evaluate_actions


def bellman_targets(
    rewards: torch.Tensor, dones: torch.Tensor, next_values: torch.Tensor, gamma: float
) -> torch.Tensor:
    """r + gamma * V(s') for non-terminal transitions, r for terminal ones. All [B]."""
    return rewards + gamma * (1.0 - dones.float()) * next_values


def lower_bounded(targets: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """max(Q_T, G): the Bellman target raised to the transition's Monte-Carlo return. [B]."""
    return torch.maximum(targets, returns)


def next_state_values(
    target_1: CEMActor,
    target_2: nn.Module | torch.jit.ScriptModule,
    next_states: StateBatch,
    config: TargetConfig = TargetConfig(),
    noise: CEMNoise | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """V(s') for a batch of next states: CEM argmax on Q_bar_1, then the clipped minimum."""
    best = target_1.argmax(next_states, noise=noise, generator=generator)
    if not config.clipped_double_q:
        return best.values
    return torch.minimum(best.values, evaluate_actions(target_2, next_states, best.actions))
