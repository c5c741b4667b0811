"""Joint off-policy/on-policy fine-tuning (Kalashnikov et al. 2018, App. F.3).

After off-policy training, the share of each batch drawn from live (on-policy) episodes ramps
linearly from 1 % to 50 %, and a training balancer holds the ratio of gradient steps to new
on-policy transitions (the paper used 6:1 to 11:1), so training pauses when the robots stall
instead of overfitting the few live episodes it has.
"""

from __future__ import annotations

from dataclasses import dataclass

from qtopt_policy.config_fields import bounded, check_bounds


@dataclass(frozen=True)
class FineTuningConfig:
    enabled: bool = False  # App. F.3: mix on-policy data in and balance training against it
    start_fraction: float = bounded(0.01, ge=0, le=1)  # App. F.3: on-policy share at first
    end_fraction: float = bounded(0.5, ge=0, le=1)  # App. F.3: on-policy share after the ramp
    ramp_steps: int = bounded(1_000_000, ge=1)  # App. F.3: over the first 1M steps
    # App. F.3: balancer ratio of gradient steps per on-policy transition, 6:1 to 11:1
    steps_per_transition: float = bounded(8.0, gt=0)
    # steps allowed before the first on-policy transition arrives
    initial_steps: int = bounded(0, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if not 0.0 <= self.start_fraction <= self.end_fraction <= 1.0:
            raise ValueError(f"on-policy fractions {self.start_fraction} -> {self.end_fraction}: "
                             "expected 0 <= start <= end <= 1")


def on_policy_fraction(steps_since_start: int, config: FineTuningConfig) -> float:
    """Linear ramp from start_fraction to end_fraction over ramp_steps, then flat."""
    progress = min(max(steps_since_start, 0) / config.ramp_steps, 1.0)
    return config.start_fraction + progress * (config.end_fraction - config.start_fraction)


@dataclass
class TrainingBalancer:
    """Allows ``steps_per_transition`` gradient steps per on-policy transition received since
    fine-tuning started (``start_step``, ``start_transitions``)."""

    config: FineTuningConfig
    start_step: int
    start_transitions: int

    def allowed_steps(self, online_transitions: int) -> int:
        new = max(online_transitions - self.start_transitions, 0)
        return self.start_step + self.config.initial_steps + int(
            self.config.steps_per_transition * new)

    def may_step(self, step: int, online_transitions: int) -> bool:
        return step < self.allowed_steps(online_transitions)
