"""The ablations of App. A and C as one config: each field is one of the paper's comparisons,
the defaults are the method the main job runs."""

from __future__ import annotations

from dataclasses import dataclass

from qtopt_collector.episode import EpisodeConfig

# State representation (App. A, C): (gripper status, height) inputs beside the image.
STATES = {"image": (False, False), "image+gripper": (True, False),
          "image+gripper+height": (True, True)}


@dataclass(frozen=True)
class AblationConfig:
    """App. A/C ablations, one field each; the defaults are the method this job runs."""

    state: str = "image+gripper+height"  # or "image", "image+gripper"
    # gamma 0.9 alone (one of Table 7's rows); "penalty" adds -0.05 per step, which with
    # targets clipped to [0, 1] zeroes every target a few steps before a likely failure
    reward: str = "discount"
    termination: str = "learned"  # the e action; "scripted": Algorithm 2
    target: str = "clipped_double_q"  # min over two target networks; "double_q": Q_bar_1 only
    # Not the paper's: "monte_carlo" raises each target to its transition's return
    bound: str = "none"

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("state", self.state, tuple(STATES)),
            ("reward", self.reward, ("penalty", "discount")),
            ("termination", self.termination, ("learned", "scripted")),
            ("target", self.target, ("clipped_double_q", "double_q")),
            ("bound", self.bound, ("none", "monte_carlo")),
        ):
            if value not in allowed:
                raise ValueError(f"ablation {name} {value!r}: expected one of {allowed}")

    @property
    def step_penalty(self) -> float:
        return EpisodeConfig().step_penalty if self.reward == "penalty" else 0.0

    @property
    def scripted_termination(self) -> bool:
        return self.termination == "scripted"

    @property
    def episode(self) -> EpisodeConfig:
        return EpisodeConfig(scripted_termination=self.scripted_termination,
                             step_penalty=self.step_penalty)
