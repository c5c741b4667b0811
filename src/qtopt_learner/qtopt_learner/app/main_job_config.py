"""The main job's one config (``qtopt run``): its command line, its ``--config`` file and the
``config.yaml`` each run folder keeps are this dataclass (docs/user_guide.md, "Configs").

The module imports no torch, rclpy or pybullet, so ``qtopt run --help`` and a bad option answer
at once; the field comments are the options' help.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qtopt_learner.app.ablations import AblationConfig
from qtopt_learner.app.budgets import BUDGETS, Budget
from qtopt_learner.collection import CollectionConfig
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.names import ENGINES, LABELS, MAX_BIN_OBJECTS

if TYPE_CHECKING:
    from qtopt_collector.sim_cell import SimCellConfig

# Camera frames per preset: the policy centre-crops the network's input from them (App. D.1).
CAMERAS = {"sim": (72, 72), "sim96": (104, 104), "paper": (640, 512)}


@functools.cache
def sim_cell() -> SimCellConfig:
    """The main job's simulated cell before the settings of each use (:meth:`MainJobConfig.sim`):
    the in-view camera keeps the lifted gripper in frame (docs/decisions.md); cells keep their
    bin for 10 episodes (App. D.3's protocol) and step the physics 40 times per action."""
    from qtopt_collector.sim_cell import SimCellConfig

    return SimCellConfig(camera_target_height=0.1, camera_pitch_deg=-60.0,
                         camera_distance=0.8, camera_fov_deg=55.0, substeps=40,
                         respawn_every=10)


@dataclass(frozen=True)
class MainJobConfig:
    # the run folder; empty: a new one, runs/main__<seed>__<date-time>. A folder that holds a
    # run resumes it, and refuses other settings
    run_dir: str = ""
    # 15m: 2 CPU cores, about 15 minutes; 2h: the long CPU run; gpu: a GPU and more cores;
    # smoke: a few of everything (qtopt_learner.app.budgets)
    budget: str = "15m"
    # Q-network and trainer preset: sim (72 px camera), sim96 (104 px), paper (wants a GPU)
    preset: str = "sim"
    cells: int = bounded(0, ge=0)  # simulated cells; 0: the budget's number
    engine: str = "inprocess"  # the learner's engine: inprocess or ray
    # the networks' and the random draws'; the episodes take seeds from first_episode_seed(seed)
    seed: int = bounded(0, ge=0)
    # bags or folders of bags replayed beside the live episodes, as a list: [a.mcap, bags/]
    offline_data: tuple[str, ...] = ()
    # How training episodes are labeled: truth (the simulator's) or detector (image subtraction
    # after the drop test, as on a real cell, App. D.3); evaluation counts the truth either way
    label: str = "truth"
    # pi_noisy's share of the episodes once the learned policy joins (App. C)
    learned_share: float = CollectionConfig.learned_share
    # objects in the bin-emptying evaluation; Sec. 6.1: the paper's bin held 28
    bin_objects: int = bounded(28, ge=1, le=MAX_BIN_OBJECTS)
    eval_workers: int = bounded(2, ge=1)  # processes running the evaluation's attempts
    ablation: AblationConfig = field(default_factory=AblationConfig)  # App. A/C ablations

    def __post_init__(self) -> None:
        check_bounds(self)
        for name, allowed in (("budget", sorted(BUDGETS)), ("preset", sorted(CAMERAS)),
                              ("engine", ENGINES), ("label", LABELS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r}: expected one of "
                                 f"{', '.join(allowed)}")
        CollectionConfig(learned_share=self.learned_share)  # validates the share

    @property
    def plan(self) -> Budget:
        return BUDGETS[self.budget]

    @property
    def num_cells(self) -> int:
        if self.cells:
            return self.cells
        return self.plan.cells or max((os.cpu_count() or 3) - 2, 1)

    def sim(self, objects: str) -> SimCellConfig:
        """Training cells (``train``) keep their bin for a few episodes and label as
        configured; evaluation cells (``test``) draw a fresh bin from every attempt's seed, the
        same for every policy, and run the drop test, so the report sets the detector's label
        beside the simulator's truth that evaluation counts."""
        width, height = CAMERAS[self.preset]
        train = objects == "train"
        base = sim_cell()
        return dataclasses.replace(
            base, camera_width=width, camera_height=height, object_split=objects,
            respawn_every=base.respawn_every if train else 1,
            label=self.label if train else "detector")
