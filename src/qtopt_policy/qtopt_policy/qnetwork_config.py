"""The Q-network's shape (App. E) and its presets, ``paper`` and ``sim``: data, not code
branches. Torch-free, so a command line parses a config that holds one without importing
torch."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

WEIGHT_INITS = ("paper", "fan_in")
NORMS = ("batch", "group")
GROUP_CHANNELS = 4  # channels per group with norm="group"


@dataclass(frozen=True)
class QNetworkConfig:
    """Shape of the Q-network; presets below are data, not code branches."""

    image_size: int = 472  # App. E: 472x472 crop
    channels: int = 64  # App. E: 64 filters per conv layer
    first_kernel: int = 6  # conv 1: 6x6, stride 2
    first_stride: int = 2
    first_pool: int = 3  # max pool after conv 1
    tower_convs: int = 6  # 6 more 5x5 convs: 7 conv layers before the action is added
    tower_kernel: int = 5
    tower_pool: int = 3
    head_convs: tuple[int, int] = (6, 3)  # 9 conv layers after the merge, in two blocks
    head_kernel: int = 3
    head_pool: int = 2  # max pool after each head block
    context_hidden: int = 256  # FC layers for action + gripper status + height
    fc_hidden: int = 64  # 2 FC layers at the top: fc_hidden then 1
    use_gripper_status: bool = True  # App. A/C ablation: state representation
    use_height: bool = True
    # TensorFlow's BatchNorm epsilon (the paper's implementation): with PyTorch's 1e-5 a channel
    # that is nearly constant in training batches lets eval-mode Q values spike
    # (docs/decisions.md, "Learner"). The group and layer norms of norm="group" use it too.
    bn_epsilon: float = 1e-3
    # "paper": truncated normal, sigma 0.01 (App. E); "fan_in": He-normal, so every
    # pre-activation starts with a variance far above bn_epsilon (see docs/decisions.md).
    weight_init: str = "paper"
    # "batch": BatchNorm after every hidden layer (App. E). "group": GroupNorm on conv layers and
    # LayerNorm on fully connected ones, the same in training and inference (docs/decisions.md).
    norm: str = "batch"

    def __post_init__(self) -> None:
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(f"weight_init {self.weight_init!r}: expected one of "
                             f"{WEIGHT_INITS}")
        if self.norm not in NORMS:
            raise ValueError(f"norm {self.norm!r}: expected one of {NORMS}")
        if self.norm == "group" and self.channels % GROUP_CHANNELS:
            raise ValueError(f"channels {self.channels}: norm 'group' expects a multiple of "
                             f"{GROUP_CHANNELS}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> QNetworkConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown Q-network config keys {sorted(unknown)}")
        values = dict(data)
        if "head_convs" in values:
            values["head_convs"] = tuple(values["head_convs"])
        return cls(**values)


PRESETS: dict[str, QNetworkConfig] = {
    # App. E: 472x472 RGB, 64 channels, about 1.2M parameters.
    "paper": QNetworkConfig(),
    # For 2 CPU cores: 64x64 images, 16 channels, the action merged at 4x4 (docs/benchmarks.md,
    # "Policy: CEM action selection and Bellman targets"); group norm, whose inference is the
    # function trained (docs/decisions.md).
    "sim": QNetworkConfig(
        image_size=64, channels=16, first_pool=2, tower_pool=4, head_pool=2,
        context_hidden=64, fc_hidden=32, weight_init="fan_in", norm="group",
    ),
}
# The sim network at 96 px, the action still merged at 4x4: it tells a grasp that will hold
# sooner than at 64 px, per step and per second (docs/benchmarks.md, "Can the network see the
# grasp?"), at about twice the cost of a step.
PRESETS["sim96"] = dataclasses.replace(PRESETS["sim"], image_size=96, tower_pool=6)

