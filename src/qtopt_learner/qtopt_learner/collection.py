"""Which policy collects each episode while the learner trains (Kalashnikov et al. 2018,
App. B and C).

The paper's simulated robots collect with pi_scripted for the first 120k gradient steps, then
with pi_noisy around the current Q-function, reloading its weights as training goes. Here the
scripted side is ``scripted_noisy`` (pi_scripted under pi_noisy's random actions, so random
stops and toggles are seen to fail), and after the switch a ``learned_share`` of the episodes
comes from pi_noisy, the rest stays scripted_noisy: the mix of scripted and learned-policy data
that App. C.1 (Table 9) shows to work where either alone does not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from qtopt_policy.policies import LOCAL_POLICIES, SERVED_POLICIES


@dataclass(frozen=True)
class CollectionConfig:
    switch_step: int = 120_000  # App. C: learner steps collected by the scripted side alone
    learned_share: float = 0.5  # share of learned-policy episodes after the switch
    scripted_policy: str = "scripted_noisy"
    learned_policy: str = "noisy"  # pi_noisy (App. B) around the newest export

    def __post_init__(self) -> None:
        if self.switch_step < 0:
            raise ValueError(f"switch_step {self.switch_step}: expected >= 0")
        if not 0.0 <= self.learned_share <= 1.0:
            raise ValueError(f"learned_share {self.learned_share}: expected a share in [0, 1]")
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

    def __init__(self, config: CollectionConfig = CollectionConfig()) -> None:
        self.config = config
        self.step = 0
        self.model_version = 0
        self.chosen: Counter[str] = Counter()
        self._since_switch = Counter[str]()

    def observe(self, step: int, model_version: int) -> None:
        """The learner's latest gradient step and exported model version."""
        self.step = max(self.step, step)
        self.model_version = max(self.model_version, model_version)

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
