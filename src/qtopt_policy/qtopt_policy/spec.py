"""The QT-Opt MDP spec: one place that defines the state and action layout.

Kalashnikov et al. 2018, Sec. 5 and App. D. Messages (``qtopt_msgs``), network inputs and bag
fields derive from these tuples; a test keeps ``qtopt_msgs`` in step with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FieldKind(str, Enum):
    CONTINUOUS = "continuous"
    BINARY = "binary"
    IMAGE = "image"


@dataclass(frozen=True)
class Field:
    """One named block of the state or action vector."""

    name: str
    size: int
    kind: FieldKind
    doc: str


# Action a (Sec. 5): Cartesian translation, azimuth change as (sin, cos), one-hot gripper
# command (close, open) and the learned termination bit.
ACTION_FIELDS: tuple[Field, ...] = (
    Field("world_vector", 3, FieldKind.CONTINUOUS, "gripper translation, m, base frame"),
    Field("vertical_rotation", 2, FieldKind.CONTINUOUS, "(sin, cos) of the azimuth change"),
    Field("gripper_close", 1, FieldKind.BINARY, "close the gripper (one-hot with open)"),
    Field("gripper_open", 1, FieldKind.BINARY, "open the gripper (one-hot with close)"),
    Field("terminate", 1, FieldKind.BINARY, "end the episode after this step"),
)

# State s (Sec. 5): camera image, gripper status and gripper height above the bin floor.
STATE_FIELDS: tuple[Field, ...] = (
    Field("image", 0, FieldKind.IMAGE, "rgb8 crop, H x W x 3"),
    Field("gripper_closed", 1, FieldKind.BINARY, "gripper is closed"),
    Field("height_to_bottom", 1, FieldKind.CONTINUOUS, "gripper height above bin floor, m"),
)

ACTION_DIM = sum(f.size for f in ACTION_FIELDS)
# Non-image state entries fed to the network beside the action (App. E).
LOW_DIM_STATE_DIM = sum(f.size for f in STATE_FIELDS if f.kind is not FieldKind.IMAGE)

MAX_STEPS = 20  # Sec. 5: episodes last at most 20 time steps.
SUCCESS_REWARD = 1.0  # Sec. 5: reward 1 when an object is held above a height at the end.
STEP_PENALTY = -0.05  # Sec. 5: -0.05 for every step before termination.
GAMMA = 0.9  # Sec. 4 / App. C: discount factor.
PAPER_IMAGE_SIZE = 472  # App. E: the network sees a 472x472 crop of the 640x512 image.
CAMERA_SIZE = (640, 512)  # App. D: width x height of the real cell's camera.


def action_slices() -> dict[str, slice]:
    """Where each action field lives in the flat action vector of length ``ACTION_DIM``."""
    out, start = {}, 0
    for f in ACTION_FIELDS:
        out[f.name] = slice(start, start + f.size)
        start += f.size
    return out
