"""The ablations of App. A and C as one config: each field is one of the paper's comparisons,
the defaults are the method the main job runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qtopt_policy.names import DEFAULT_TERMINATION, TERMINATIONS

if TYPE_CHECKING:  # the command line reads CHOICES without loading the episode loop (torch)
    from qtopt_collector.episode import EpisodeConfig

# State representation (App. A, C): (gripper status, height) inputs beside the image.
STATES = {"image": (False, False), "image+gripper": (True, False),
          "image+gripper+height": (True, True)}
# The values of each AblationConfig field.
CHOICES: dict[str, tuple[str, ...]] = {
    "state": tuple(STATES),
    "reward": ("penalty", "discount"),
    "termination": TERMINATIONS,
    "target": ("clipped_double_q", "double_q"),
    "bound": ("none", "monte_carlo"),
}


@dataclass(frozen=True)
class AblationConfig:
    """App. A/C ablations, one field each; the defaults are the method this job runs. The
    fields' comments are the command line's help (``qtopt run --help``)."""

    # inputs beside the image: gripper status and height (App. A, C)
    state: str = "image+gripper+height"
    # discount: gamma 0.9 alone (one of Table 7's rows); penalty: also -0.05 per step, which
    # with targets clipped to [0, 1] zeroes every target a few steps before a likely failure
    reward: str = "discount"
    # close: the close is the grasp attempt and ends the episode (like Quillen et al. 2018's
    # auto-grasp; not the paper); learned: the policy's terminate action (the paper's e
    # action); scripted: Algorithm 2
    termination: str = DEFAULT_TERMINATION
    # clipped_double_q: the minimum of two target networks; double_q: Q_bar_1 alone
    target: str = "clipped_double_q"
    # monte_carlo: raise each Bellman target to the transition's discounted return (not in
    # the paper)
    bound: str = "none"

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} {value!r}: expected one of {', '.join(allowed)}")

    @property
    def step_penalty(self) -> float:
        from qtopt_collector.episode import EpisodeConfig

        return EpisodeConfig().step_penalty if self.reward == "penalty" else 0.0

    @property
    def scripted_termination(self) -> bool:
        """Whether a rule, not the e action, ends episodes (the policy never stops)."""
        return self.termination != "learned"

    @property
    def episode(self) -> EpisodeConfig:
        from qtopt_collector.episode import EpisodeConfig

        return EpisodeConfig.ending_by(self.termination, step_penalty=self.step_penalty)
