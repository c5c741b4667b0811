"""Named FIFO replay buffers of whole episodes (Kalashnikov et al. 2018, Sec. 4.3, App. F).

Each buffer ("offline" for log replay, "online" for live episodes) stores episodes, not loose
transitions: an episode of T steps keeps its T + 1 frames once, so s' of step t is the frame
of step t + 1 and is never stored twice. Frames are uint8, or PNG-compressed (lossless, OpenCV)
when ``compress_images`` is set; nothing is stored as float. Capacity is bounded in transitions
and in bytes; the oldest episodes leave first. :class:`ReplayMixer` samples transitions across
named buffers with fixed weights (App. F.3's on-policy fraction is such a weight).

Written here rather than taken from TorchRL: its storages hold independent transitions, and
sharing s' inside episodes is what keeps 100k transitions within the memory target.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.episode_record import EpisodeRecord
from qtopt_policy.spec import GAMMA, LOW_DIM_STATE


@dataclass(frozen=True)
class ReplayConfig:
    # transitions kept; past this or capacity_bytes the oldest episodes leave first
    capacity_transitions: int = bounded(100_000, ge=1)
    # bytes kept: the memory target for 100k sim transitions
    capacity_bytes: int = bounded(2 * 1024**3, ge=1)
    compress_images: bool = False  # store frames PNG-compressed (lossless) rather than raw
    # Share of every sample drawn from episodes' last transitions (the terminal ones, whose
    # targets are the reward alone); 0 samples all transitions uniformly, as the paper does.
    terminal_fraction: float = bounded(0.0, ge=0, lt=1)
    # Discount of the Monte-Carlo return stored with every transition (the targets' lower
    # bound when TargetConfig.mc_lower_bound is on); it must equal the targets' gamma.
    return_gamma: float = bounded(GAMMA, ge=0, le=1)

    def __post_init__(self) -> None:
        check_bounds(self)


class Batch(NamedTuple):
    """Transitions (s, a, r, s', done) as arrays; images uint8 [B, H, W, 3]."""

    images: np.ndarray
    low_dim: np.ndarray  # [B, 2] float32 laid out by spec.LOW_DIM_STATE
    actions: np.ndarray  # [B, ACTION_DIM] float32
    rewards: np.ndarray  # [B] float32
    dones: np.ndarray  # [B] bool
    next_images: np.ndarray
    next_low_dim: np.ndarray
    returns: np.ndarray  # [B] float32: the discounted reward from s to the episode's end


@dataclass
class _StoredEpisode:
    frames: np.ndarray | list[bytes]  # T + 1 frames: uint8 array, or PNG bytes per frame
    low_dim: np.ndarray  # [T + 1, 2]
    actions: np.ndarray  # [T, A]
    rewards: np.ndarray  # [T]
    dones: np.ndarray  # [T]
    returns: np.ndarray  # [T]
    nbytes: int

    @property
    def transitions(self) -> int:
        return len(self.rewards)

    def frame(self, index: int) -> np.ndarray:
        if isinstance(self.frames, np.ndarray):
            return self.frames[index]
        decoded = cv2.imdecode(np.frombuffer(self.frames[index], np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k} to the episode's end, for every t."""
    returns = np.zeros(len(rewards), dtype=np.float32)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        returns[t] = running
    return returns


def _store(record: EpisodeRecord, compress: bool, gamma: float) -> _StoredEpisode:
    observations = [s.observation for s in record.steps] + [record.final_observation]
    images = np.stack([o.image for o in observations])
    if compress:
        frames: np.ndarray | list[bytes] = [
            cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()
            for img in images
        ]
        frame_bytes = sum(len(f) for f in frames)
    else:
        frames, frame_bytes = images, images.nbytes
    low_dim = LOW_DIM_STATE.encode_batch(observations)
    actions = np.stack([s.action.to_vector() for s in record.steps]).astype(np.float32)
    rewards = np.array([s.reward for s in record.steps], dtype=np.float32)
    dones = np.array([s.done for s in record.steps], dtype=bool)
    returns = discounted_returns(rewards, gamma)
    nbytes = (frame_bytes + low_dim.nbytes + actions.nbytes + rewards.nbytes + dones.nbytes
              + returns.nbytes)
    return _StoredEpisode(frames, low_dim, actions, rewards, dones, returns, nbytes)


class EpisodeReplay:
    """One named FIFO buffer of episodes, sampled uniformly over its transitions."""

    def __init__(self, name: str, config: ReplayConfig = ReplayConfig()) -> None:
        self.name = name
        self.config = config
        self._episodes: deque[_StoredEpisode] = deque()
        self.transitions = 0
        self.nbytes = 0
        self.episodes_added = 0
        self.transitions_added = 0

    def __len__(self) -> int:
        return self.transitions

    @property
    def episodes(self) -> int:
        return len(self._episodes)

    def add(self, record: EpisodeRecord) -> None:
        """Append an episode; evict the oldest while over a capacity limit."""
        if not record.steps:
            raise ValueError(f"episode {record.episode_id} has no steps: nothing to replay")
        stored = _store(record, self.config.compress_images, self.config.return_gamma)
        self._episodes.append(stored)
        self.transitions += stored.transitions
        self.nbytes += stored.nbytes
        self.episodes_added += 1
        self.transitions_added += stored.transitions
        while len(self._episodes) > 1 and (
            self.transitions > self.config.capacity_transitions
            or self.nbytes > self.config.capacity_bytes
        ):
            old = self._episodes.popleft()
            self.transitions -= old.transitions
            self.nbytes -= old.nbytes

    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        """``n`` transitions drawn with replacement: a binomial share ``terminal_fraction``
        are last transitions of uniformly drawn episodes, the rest uniform over all."""
        if self.transitions == 0:
            raise ValueError(f"replay buffer {self.name!r} is empty")
        lengths = np.array([e.transitions for e in self._episodes])
        ends = np.cumsum(lengths)
        fraction = self.config.terminal_fraction
        terminal = int(rng.binomial(n, fraction)) if fraction > 0 else 0
        flat = np.concatenate([rng.integers(0, self.transitions, size=n - terminal),
                               ends[rng.integers(0, len(lengths), size=terminal)] - 1])
        episode_index = np.searchsorted(ends, flat, side="right")
        step_index = flat - (ends - lengths)[episode_index]
        rows = []
        for e_i, t in zip(episode_index, step_index, strict=True):
            e = self._episodes[e_i]
            rows.append((e.frame(t), e.low_dim[t], e.actions[t], e.rewards[t], e.dones[t],
                         e.frame(t + 1), e.low_dim[t + 1], e.returns[t]))
        columns = list(zip(*rows, strict=True))
        return Batch(*(np.stack(c) for c in columns))


class ReplayMixer:
    """Samples across named buffers with fixed weights; empty buffers drop out and the
    remaining weights are renormalized."""

    def __init__(self, buffers: dict[str, EpisodeReplay], weights: dict[str, float]) -> None:
        unknown = set(weights) - set(buffers)
        if unknown or any(w < 0 for w in weights.values()):
            raise ValueError(
                f"weights {weights}: expected non-negative weights for buffers {sorted(buffers)}"
            )
        self.buffers = buffers
        self.weights = dict(weights)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[Batch, dict[str, int]]:
        """``n`` transitions and how many came from each buffer."""
        names = [k for k, w in self.weights.items() if w > 0 and len(self.buffers[k]) > 0]
        if not names:
            raise ValueError("all weighted replay buffers are empty")
        p = np.array([self.weights[k] for k in names], dtype=np.float64)
        counts = rng.multinomial(n, p / p.sum())
        parts = [self.buffers[k].sample(int(c), rng) for k, c in zip(names, counts, strict=True)
                 if c > 0]
        batch = Batch(*(np.concatenate(field) for field in zip(*parts, strict=True)))
        return batch, {k: int(c) for k, c in zip(names, counts, strict=True)}
