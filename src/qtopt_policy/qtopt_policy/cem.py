"""Cross-entropy method over QT-Opt's mixed action space (Kalashnikov et al. 2018, Sec. 4.2).

Each iteration samples N candidate actions per state, scores all B x N of them with one call of
the Q callable, keeps the M best (the elites) and refits the sampling distribution to them.
Defaults: N = 64, M = 6, 2 iterations. Used both for acting and for Bellman targets.

The action a = (t, r, g_close, g_open, e) is searched in two parts:
- termination: every terminating action is the one canonical ``Action.stop()`` (the Q-network
  scores it so), so Q(s, stop) is scored exactly, once per state, instead of spending samples
  on it; with ``learned_termination`` off (Algorithm 2's scripted termination) it is never
  chosen;
- the N samples of every iteration are all non-terminating: a diagonal Gaussian over
  (t_x, t_y, t_z, azimuth angle), clipped to the workspace bounds, the angle encoded as
  (sin, cos) before scoring; the gripper command a Bernoulli p_close (g_open = 1 - g_close).
Refit from the elites: the Gaussian takes the elites' mean and standard deviation (floored at
``min_std_fraction`` of the bound so it never collapses to a point); the Bernoulli takes the
elites' frequency with add-half smoothing, p = (k + 0.5) / (M + 1), so a choice no elite made
keeps a small chance in the next iteration. The result is the best-scoring candidate seen in
any iteration, or stop where Q(s, stop) scores higher.

Randomness comes from an explicit :class:`CEMNoise` (normal and uniform draws per state), so
batched and per-state runs given the same noise agree exactly, and per-state seeds make a batch
reproducible state by state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from qtopt_policy.cem_config import CEMConfig
from qtopt_policy.spec import ACTION, ACTION_DIM, Action, ActionBounds

# [B, N, ACTION_DIM] candidate actions -> [B, N] scores (higher is better).
ScoreFn = Callable[[torch.Tensor], torch.Tensor]

N_CONTINUOUS = 4  # t_x, t_y, t_z, azimuth angle
N_DISCRETE = 1  # gripper close (vs open); termination is scored exactly, not sampled


@dataclass(frozen=True)
class CEMNoise:
    """Random draws for one CEM run: normal [B, I, N, 4] and uniform [B, I, N, 1]."""

    normal: torch.Tensor
    uniform: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.normal.shape[0]

    def __getitem__(self, index: slice) -> CEMNoise:
        return CEMNoise(self.normal[index], self.uniform[index])

    def to(self, device: torch.device | str) -> CEMNoise:
        return CEMNoise(self.normal.to(device), self.uniform.to(device))


def draw_noise(
    batch_size: int,
    config: CEMConfig,
    generator: torch.Generator | None = None,
    seeds: Sequence[int] | None = None,
) -> CEMNoise:
    """Draw the noise of a CEM run, from one generator, or from one seed per state."""
    shape = (config.iterations, config.num_samples)
    if seeds is None:
        return CEMNoise(
            torch.randn((batch_size, *shape, N_CONTINUOUS), generator=generator),
            torch.rand((batch_size, *shape, N_DISCRETE), generator=generator),
        )
    if len(seeds) != batch_size:
        raise ValueError(f"{len(seeds)} seeds for a batch of {batch_size}: expected one per state")
    normals, uniforms = [], []
    for seed in seeds:
        g = torch.Generator().manual_seed(int(seed))
        normals.append(torch.randn((*shape, N_CONTINUOUS), generator=g))
        uniforms.append(torch.rand((*shape, N_DISCRETE), generator=g))
    return CEMNoise(torch.stack(normals), torch.stack(uniforms))


def continuous_bounds(bounds: ActionBounds) -> torch.Tensor:
    """Half-widths of the continuous CEM dims (t_x, t_y, t_z, azimuth)."""
    t = bounds.translation_limits().tolist()
    return torch.tensor([*t, bounds.max_rotation], dtype=torch.float32)


def encode_actions(continuous: torch.Tensor, close: torch.Tensor) -> torch.Tensor:
    """[..., 4] continuous + [..., 1] {0,1} gripper close -> [..., ACTION_DIM] network layout
    of a non-terminating action."""
    angle = continuous[..., 3:4]
    return ACTION.encode(
        world_vector=continuous[..., :3],
        vertical_rotation=torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1),
        gripper_close=close, gripper_open=1.0 - close, terminate=torch.zeros_like(close),
    )


def _checked(scores: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(scores.shape) != shape:
        raise ValueError(f"score_fn returned shape {tuple(scores.shape)}: expected {shape}")
    return scores


@dataclass(frozen=True)
class CEMResult:
    actions: torch.Tensor  # [B, ACTION_DIM], network layout
    values: torch.Tensor  # [B], the score of each chosen action


def cem_maximize(
    score_fn: ScoreFn,
    noise: CEMNoise,
    bounds: ActionBounds,
    config: CEMConfig = CEMConfig(),
) -> CEMResult:
    """Approximate argmax_a score_fn(a) for every state of the batch at once."""
    b = noise.batch_size
    device = noise.normal.device
    half = continuous_bounds(bounds).to(device)
    mean = torch.zeros(b, 1, N_CONTINUOUS, device=device)
    std = (half * config.initial_std_fraction).expand(b, 1, N_CONTINUOUS).clone()
    probs = torch.full((b, 1, N_DISCRETE), config.initial_close_probability, device=device)
    best_values = torch.full((b,), -torch.inf, device=device)
    best_actions = torch.zeros(b, ACTION_DIM, device=device)
    rows = torch.arange(b, device=device)
    for i in range(config.iterations):
        continuous = torch.maximum(torch.minimum(mean + std * noise.normal[:, i], half), -half)
        discrete = (noise.uniform[:, i] < probs).float()
        actions = encode_actions(continuous, discrete)  # [B, N, A]
        scores = _checked(score_fn(actions), (b, config.num_samples))
        top_values, top_idx = scores.topk(config.num_elites, dim=1)
        improved = top_values[:, 0] > best_values
        best_values = torch.where(improved, top_values[:, 0], best_values)
        best_actions = torch.where(
            improved.unsqueeze(1), actions[rows, top_idx[:, 0]], best_actions
        )
        if i + 1 < config.iterations:
            elite_c = continuous.gather(1, top_idx.unsqueeze(2).expand(-1, -1, N_CONTINUOUS))
            elite_d = discrete.gather(1, top_idx.unsqueeze(2).expand(-1, -1, N_DISCRETE))
            mean = elite_c.mean(dim=1, keepdim=True)
            std = torch.maximum(
                elite_c.std(dim=1, keepdim=True, unbiased=False), half * config.min_std_fraction
            )
            probs = (elite_d.sum(dim=1, keepdim=True) + 0.5) / (config.num_elites + 1.0)
    if config.learned_termination:
        stop = torch.from_numpy(Action.stop().to_vector()).to(device).expand(b, 1, ACTION_DIM)
        stop_values = _checked(score_fn(stop), (b, 1))[:, 0]
        stops = stop_values > best_values
        best_values = torch.where(stops, stop_values, best_values)
        best_actions = torch.where(stops.unsqueeze(1), stop[:, 0], best_actions)
    return CEMResult(best_actions, best_values)
