"""One configuration for the whole learner and its parts (trainer, Bellman updaters, replay
hub, log replay); presets are data (``paper`` and ``sim``). Nothing here imports torch, so a
command line parses and saves these configs at once; the components import their config from
here."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qtopt_learner.distributed.fine_tuning import FineTuningConfig
from qtopt_learner.distributed.replay import ReplayConfig
from qtopt_learner.learner_layout import LearnerLayout
from qtopt_policy.cem_config import CEMConfig
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.names import ENGINES, TERMINATIONS
from qtopt_policy.qnetwork_config import PRESETS, QNetworkConfig
from qtopt_policy.spec import GAMMA, STEP_PENALTY, CameraSpec

if TYPE_CHECKING:
    import torch

# The trainer's losses (qtopt_learner.losses): Sec. 4.2's cross-entropy, App. C's squared error.
LOSS_NAMES = ("cross_entropy", "squared")


@dataclass(frozen=True)
class TrainerConfig:
    lr: float = bounded(1e-4, gt=0)  # App. E: SGD learning rate
    momentum: float = bounded(0.9, ge=0)  # App. E: SGD momentum
    weight_decay: float = bounded(7e-5, ge=0)  # App. E: L2
    batch_size: int = bounded(32, ge=1)  # App. E: transitions per gradient step
    polyak: float = bounded(0.9999, ge=0, lt=1)  # Sec. 4.2: Q_bar_1 averaging
    target_lag_steps: int = bounded(6000, ge=0)  # Sec. 4.2: Q_bar_2 lags Q_bar_1
    loss: str = "cross_entropy"  # or App. C's ablation, "squared"

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"loss {self.loss!r}: expected one of {', '.join(LOSS_NAMES)}")


@dataclass(frozen=True)
class TargetConfig:
    gamma: float = bounded(GAMMA, ge=0, le=1)  # discount; Sec. 4.1 / App. C: 0.9
    clipped_double_q: bool = True  # Sec. 4.1: min over the two target networks
    # Not in the paper: raise every target to the transition's own discounted Monte-Carlo
    # return, which the behaviour policy achieved and so bounds Q* from below (docs/decisions.md)
    mc_lower_bound: bool = False

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True  # App. E's image augmentation; off: centre crop, colours unchanged
    random_crop: bool = True  # random crop position, else the centre
    brightness: float = bounded(0.125, ge=0)  # App. E: delta in [-0.125, 0.125]
    contrast: tuple[float, float] = (0.5, 1.5)  # App. E: factor range
    saturation: tuple[float, float] = (0.5, 1.5)  # App. E: factor range

    def __post_init__(self) -> None:
        check_bounds(self)
        for name in ("contrast", "saturation"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} range {(low, high)}: expected 0 <= low <= high")


@dataclass(frozen=True)
class BellmanUpdaterConfig:
    batch_size: int = bounded(32, ge=1)  # transitions labeled per batch
    reload_every: int = bounded(4, ge=1)  # batches between checks for newer target networks
    target: TargetConfig = field(default_factory=TargetConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    cem: CEMConfig = field(default_factory=CEMConfig)  # Sec. 4.2: 64 samples, 6 elites, 2 it.

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class HubConfig:
    offline: ReplayConfig = field(default_factory=ReplayConfig)
    online: ReplayConfig = field(default_factory=ReplayConfig)
    # Labeled samples in the train ring: small, so the trainer fits labels from recent targets
    # rather than stale ones (docs/decisions.md, "Learner").
    train_capacity: int = bounded(1000, ge=1)
    seed: int = bounded(0, ge=0)  # of the replay sampling
    # App. C ablation on recorded data: step_penalty on every step but the last instead of the
    # rewards in the bags (the last keeps its recorded reward).
    relabel_rewards: bool = False
    step_penalty: float = STEP_PENALTY  # reward per step with relabel_rewards; 0: discount only

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class LogReplayConfig:
    readers: int = bounded(2, ge=1)  # App. F.2: several readers decorrelate the stream
    chunk_episodes: int = bounded(8, ge=1)  # episodes handed to the replay service per call
    seed: int = bounded(0, ge=0)  # of the split of files among readers and their order

    def __post_init__(self) -> None:
        check_bounds(self)



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
    # Q-network preset: sim (64 px), sim96 (96 px) or paper (472 px, App. E); qtopt train also
    # takes its trainer settings from it (learner_preset)
    preset: str = "sim"
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
    # What ended the training episodes (names.TERMINATIONS; "": not recorded): evaluation runs
    # a model's episodes under the same rule unless told otherwise.
    termination: str = ""
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
        if self.termination not in ("", *TERMINATIONS):
            raise ValueError(f"termination {self.termination!r}: expected one of "
                             f"{', '.join(TERMINATIONS)}, or '' (not recorded)")
        if self.trainers > 1 and self.engine != "ray":
            raise ValueError(f"trainers {self.trainers}: several training workers need the "
                             "ray engine")
        gamma = self.updater.target.gamma
        for name, replay in (("offline", self.hub.offline), ("online", self.hub.online)):
            if self.updater.target.mc_lower_bound and replay.return_gamma != gamma:
                raise ValueError(f"hub.{name}.return_gamma {replay.return_gamma}: expected the "
                                 f"targets' gamma {gamma} when mc_lower_bound is on")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device {self.device!r}: expected 'auto', 'cpu', 'cuda' or "
                             "'cuda:N'")

    @property
    def network(self) -> QNetworkConfig:
        return dataclasses.replace(PRESETS[self.preset], use_height=self.use_height,
                                   use_gripper_status=self.use_gripper_status)

    @property
    def layout(self) -> LearnerLayout:
        return LearnerLayout(Path(self.run_dir))

    def resolved_device(self) -> torch.device:
        from qtopt_policy.policy_server import resolve_device

        return resolve_device(self.device)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def learner_preset(preset: str, **overrides) -> LearnerConfig:
    """The learner for a Q-network preset: its trainer settings plus ``overrides``."""
    if preset not in TRAINER_PRESETS:
        raise ValueError(f"preset {preset!r}: expected one of {sorted(TRAINER_PRESETS)}")
    return dataclasses.replace(LearnerConfig(preset=preset, trainer=TRAINER_PRESETS[preset]),
                               **overrides)
