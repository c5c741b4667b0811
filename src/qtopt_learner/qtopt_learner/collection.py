"""Which policy collects each episode while the learner trains (Kalashnikov et al. 2018,
App. B and C).

The paper's simulated robots collect with pi_scripted for the first 120k gradient steps, then
with pi_noisy around the current Q-function, reloading its weights as training goes. Here the
scripted side is ``scripted_noisy`` (pi_scripted under pi_noisy's random actions, so random
stops and toggles are seen to fail), and after the switch a ``learned_share`` of the episodes
comes from pi_noisy, the rest stays scripted_noisy: the mix of scripted and learned-policy data
that App. C.1 (Table 9) shows to work where either alone does not.

The paper's 60 robots are paced by their number; two simulated cells on a small machine
collect faster than one trainer learns, and would finish before the learned policy ever
joins. So new episodes wait while the learner is more than ``max_lag_steps`` behind the steps
its balancer allows for what was collected (App. F.3's balancer, the other way round, like
Acme's sample-to-insert limiter with an error buffer).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.names import LOCAL_POLICIES, SERVED_POLICIES


@dataclass(frozen=True)
class CollectionConfig:
    # App. C: learner steps collected by the scripted side alone
    switch_step: int = bounded(120_000, ge=0)
    # share of learned-policy (pi_noisy) episodes once the learned policy joins
    learned_share: float = bounded(0.5, ge=0, le=1)
    scripted_policy: str = "scripted_noisy"
    learned_policy: str = "noisy"  # pi_noisy (App. B) around the newest export
    # gradient steps the learner may lag behind; 0: never wait
    max_lag_steps: int = bounded(1000, ge=0)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.scripted_policy not in LOCAL_POLICIES:
            raise ValueError(f"scripted_policy {self.scripted_policy!r}: expected one of "
                             f"{LOCAL_POLICIES}")
        if self.learned_policy not in SERVED_POLICIES:
            raise ValueError(f"learned_policy {self.learned_policy!r}: expected one of "
                             f"{SERVED_POLICIES}")


class CollectionSchedule:
    """Chooses each episode's policy from the learner's progress.

    Before ``switch_step`` (or before the learner has exported a model) every episode is
    scripted; after it, episodes interleave so that the learned share among the episodes
    chosen since the switch stays at ``learned_share``."""

    def __init__(self, config: CollectionConfig = CollectionConfig(),
                 steps_per_transition: float = 0.0) -> None:
        """``steps_per_transition``: the learner's balancer ratio (0: never wait)."""
        self.config = config
        self.steps_per_transition = steps_per_transition
        self.step = 0
        self.model_version = 0
        self.allowed_steps = 0.0
        self.finished = False
        self.chosen: Counter[str] = Counter()
        self._since_switch = Counter[str]()

    def observe(self, step: int, model_version: int, transitions: int = 0,
                finished: bool = False) -> None:
        """The learner's latest gradient step, exported model version, collected transitions
        and whether it has reached its last step."""
        self.step = max(self.step, step)
        self.model_version = max(self.model_version, model_version)
        self.allowed_steps = max(self.allowed_steps, self.steps_per_transition * transitions)
        self.finished = self.finished or finished

    def ready(self) -> bool:
        """Whether a new episode may start: the learner is at most ``max_lag_steps`` behind
        what the collected transitions allow (or will not train any more)."""
        limit = self.config.max_lag_steps
        return self.finished or not limit or self.allowed_steps - self.step <= limit

    @property
    def switched(self) -> bool:
        return self.step >= self.config.switch_step and self.model_version > 0

    def choose(self, index: int) -> str:
        """The policy of the ``index``-th episode sent (indices only order the calls)."""
        cfg = self.config
        name = cfg.scripted_policy
        if self.switched:
            total = sum(self._since_switch.values())
            if self._since_switch[cfg.learned_policy] < cfg.learned_share * (total + 1):
                name = cfg.learned_policy
            self._since_switch[name] += 1
        self.chosen[name] += 1
        return name
