"""The cross-entropy method's settings (Sec. 4.2); torch-free, so a command line parses a
config that holds one without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from qtopt_policy.config_fields import bounded, check_bounds


@dataclass(frozen=True)
class CEMConfig:
    num_samples: int = bounded(64, ge=1)  # N, Sec. 4.2: actions sampled per iteration
    num_elites: int = bounded(6, ge=1)  # M, Sec. 4.2: best samples refit; at most num_samples
    iterations: int = bounded(2, ge=1)  # Sec. 4.2
    # first iteration's probability of sampling "gripper closed" (refit from the elites)
    initial_close_probability: float = bounded(0.5, ge=0, le=1)
    # Sec. 5's learned termination: compare Q(s, stop) with the best sampled action. Off for
    # Algorithm 2's scripted termination, where the policy never chooses to stop.
    learned_termination: bool = True
    # initial std as a fraction of the bound (2 sigma inside)
    initial_std_fraction: float = bounded(0.5, ge=0)
    min_std_fraction: float = bounded(0.05, ge=0)  # floor of the refit std, fraction of the bound

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.num_elites > self.num_samples:
            raise ValueError(f"num_elites {self.num_elites}: expected at most num_samples "
                             f"({self.num_samples})")

