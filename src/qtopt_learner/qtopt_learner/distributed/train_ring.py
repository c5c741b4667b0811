"""The "train" ring buffer of labeled samples (Kalashnikov et al. 2018, Sec. 4.3, App. F.4).

Bellman updaters write (s, a, Q_T) triples (:class:`~qtopt_learner.trainer.LabeledBatch`) with
the augmented, cropped image of s; training workers sample them uniformly. A fixed-size ring:
the oldest labels are overwritten, so the trainer always fits recent targets. Each sample keeps
the trainer step of the target network that labelled it, so the target lag can be measured
where the sample is used.
"""

from __future__ import annotations

import threading

import numpy as np

from qtopt_learner.trainer import LabeledBatch


class TrainRing:
    """Fixed-capacity ring of labeled samples; thread-safe."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"train ring capacity {capacity}: expected >= 1")
        self.capacity = capacity
        self._data: LabeledBatch | None = None
        self._next = 0
        self._size = 0
        self.written = 0
        self.sampled = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def _allocate(self, like: LabeledBatch) -> LabeledBatch:
        return LabeledBatch(*(np.zeros((self.capacity, *a.shape[1:]), a.dtype) for a in like))

    def add(self, batch: LabeledBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        with self._lock:
            if self._data is None:
                self._data = self._allocate(batch)
            index = (self._next + np.arange(n)) % self.capacity
            for store, values in zip(self._data, batch, strict=True):
                store[index] = values
            self._next = int((self._next + n) % self.capacity)
            self._size = min(self.capacity, self._size + n)
            self.written += n

    def sample(self, n: int, rng: np.random.Generator) -> LabeledBatch:
        with self._lock:
            if self._data is None or self._size == 0:
                raise ValueError("train ring is empty: no labeled samples yet")
            index = rng.integers(0, self._size, size=n)
            self.sampled += n
            return LabeledBatch(*(store[index] for store in self._data))
