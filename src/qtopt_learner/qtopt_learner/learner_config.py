"""One configuration for the whole learner; presets are data (``paper`` and ``sim``)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from qtopt_learner.distributed.bellman_updater import BellmanUpdaterConfig
from qtopt_learner.distributed.fine_tuning import FineTuningConfig
from qtopt_learner.distributed.hub import HubConfig
from qtopt_learner.distributed.log_replay import LogReplayConfig
from qtopt_learner.learner_layout import LearnerLayout
from qtopt_learner.trainer import TrainerConfig
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.names import ENGINES
from qtopt_policy.policy_server import resolve_device
from qtopt_policy.qnetwork import PRESETS, QNetworkConfig
from qtopt_policy.spec import CameraSpec

TRAINER_PRESETS: dict[str, TrainerConfig] = {
    # App. E / Sec. 4.2 as published: millions of steps on GPUs.
    "paper": TrainerConfig(),
    # A CPU budget of thousands of steps: the paper's optimizer with a larger step size and
    # targets that track within hundreds of steps (docs/decisions.md, "Learner").
    "sim": TrainerConfig(lr=1e-2, polyak=0.995, target_lag_steps=500),
}
TRAINER_PRESETS["sim96"] = TRAINER_PRESETS["sim"]  # the same budget, a larger image


@dataclass(frozen=True)
class LearnerConfig:
    preset: str = "sim"  # Q-network preset (qtopt_policy.qnetwork.PRESETS)
    # App. A/C state-representation ablation: what the Q-network sees besides the image
    use_gripper_status: bool = True  # the gripper's open/closed bit
    use_height: bool = True  # App. A/C ablation: the gripper's height above the bin floor
    run_dir: str = "runs/learner"  # checkpoints, exported models, TensorBoard, config
    offline_paths: tuple[str, ...] = ()  # bags or folders for log replay
    # gradient steps to reach (a resumed run counts from its checkpoint)
    steps: int = bounded(20_000, ge=0)
    engine: str = "inprocess"  # "inprocess" (threads) or "ray" (actors)
    ray_address: str = ""  # empty: start a local Ray bound to 127.0.0.1
    updaters: int = bounded(1, ge=1)  # Bellman-updater workers
    # training workers; > 1 averages gradients with torch DDP (Ray engine)
    trainers: int = bounded(1, ge=1)
    device: str = "auto"  # "auto": CUDA when present, else CPU
    # intra-op threads per worker (trainer, each updater); 0 keeps torch's default. One each,
    # because more oversubscribe a small machine's cores (docs/decisions.md, "Learner").
    torch_threads: int = bounded(1, ge=0)
    # labeled samples in the train ring before the first step
    min_train_samples: int = bounded(256, ge=0)
    # steps between target snapshots offered to updaters
    publish_targets_every: int = bounded(10, ge=1)
    checkpoint_every: int = bounded(1000, ge=1)  # steps between checkpoints
    export_every: int = bounded(1000, ge=1)  # steps between TorchScript exports (model updates)
    log_every: int = bounded(50, ge=1)  # steps between TensorBoard scalars
    seed: int = bounded(0, ge=0)  # random, numpy and torch; each worker derives its own
    # Provenance written into every exported model: how the training episodes were labeled
    # ("detector" or "truth", the sim cell's ``label``) and the camera they were seen through
    # (width 0: unknown, not recorded). Evaluation refuses a model on a cell with another camera.
    label_source: str = ""
    camera: CameraSpec = field(default_factory=CameraSpec)
    trainer: TrainerConfig = field(default_factory=lambda: TRAINER_PRESETS["sim"])
    updater: BellmanUpdaterConfig = field(default_factory=BellmanUpdaterConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    log_replay: LogReplayConfig = field(default_factory=LogReplayConfig)
    fine_tuning: FineTuningConfig = field(default_factory=FineTuningConfig)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.preset not in PRESETS:
            raise ValueError(f"preset {self.preset!r}: expected one of {sorted(PRESETS)}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r}: expected one of {ENGINES}")
        if self.trainers > 1 and self.engine != "ray":
            raise ValueError(f"trainers {self.trainers}: several training workers need the "
                             "ray engine")
        gamma = self.updater.target.gamma
        for name, replay in (("offline", self.hub.offline), ("online", self.hub.online)):
            if self.updater.target.mc_lower_bound and replay.return_gamma != gamma:
                raise ValueError(f"hub.{name}.return_gamma {replay.return_gamma}: expected the "
                                 f"targets' gamma {gamma} when mc_lower_bound is on")
        resolve_device(self.device)

    @property
    def network(self) -> QNetworkConfig:
        return dataclasses.replace(PRESETS[self.preset], use_height=self.use_height,
                                   use_gripper_status=self.use_gripper_status)

    @property
    def layout(self) -> LearnerLayout:
        return LearnerLayout(Path(self.run_dir))

    def resolved_device(self) -> torch.device:
        return resolve_device(self.device)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def learner_preset(preset: str, **overrides) -> LearnerConfig:
    """The learner for a Q-network preset: its trainer settings plus ``overrides``."""
    if preset not in TRAINER_PRESETS:
        raise ValueError(f"preset {preset!r}: expected one of {sorted(TRAINER_PRESETS)}")
    return dataclasses.replace(LearnerConfig(preset=preset, trainer=TRAINER_PRESETS[preset]),
                               **overrides)
