"""The QT-Opt MDP spec: one place that defines the state and action layout.

Kalashnikov et al. 2018, Sec. 5 and App. D. Messages (``qtopt_msgs``), network inputs and bag
fields derive from these tuples; a test keeps ``qtopt_msgs`` in step with them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from enum import Enum

import numpy as np


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
    Field("terminate", 1, FieldKind.BINARY, "end the episode now; the rest is not executed"),
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


def terminate_index() -> int:
    """Index of the ``terminate`` bit in the flat action vector."""
    return action_slices()["terminate"].start


@dataclass(frozen=True)
class ActionBounds:
    """Workspace hard bounds on one step's action (Sec. 5, App. D.2).

    The paper does not publish its per-step limits; these defaults suit a 30 cm deep bin reached
    in a few descent steps, and every cell and policy reads them from here.
    """

    max_translation_xy: float = 0.05  # m per step along base x and y
    max_translation_z: float = 0.08  # m per step along base z
    max_rotation: float = math.pi / 8  # rad of azimuth change per step

    def translation_limits(self) -> np.ndarray:
        return np.array(
            [self.max_translation_xy, self.max_translation_xy, self.max_translation_z],
            dtype=np.float32,
        )


NOMINAL_HEIGHT = 0.3  # m: the gripper starts about this high above the bin floor


def context_input_scale(bounds: ActionBounds = ActionBounds()) -> np.ndarray:
    """Per-entry factors that bring the network's non-image inputs (the action vector, then
    gripper status and height) to about unit range: translations and the azimuth's sine by
    their per-step bounds, the height by ``NOMINAL_HEIGHT``; binary entries and the cosine
    (near 1 for per-step turns) as they are."""
    action = [*(1.0 / bounds.translation_limits()), 1.0 / math.sin(bounds.max_rotation),
              1.0, 1.0, 1.0, 1.0]  # sin, cos, close, open, terminate
    state = [1.0, 1.0 / NOMINAL_HEIGHT]  # gripper_closed, height_to_bottom
    return np.array(action + state, dtype=np.float32)


@dataclass(frozen=True)
class Observation:
    """The state s = (I, g_closed, g_height) of App. D.1; ``image`` is uint8 H x W x 3 RGB."""

    image: np.ndarray
    gripper_closed: bool
    height_to_bottom: float

    def validate(self, image_size: int | None = None) -> Observation:
        """Raise ValueError naming the bad value; return self when valid."""
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or (
            img.shape[2] != 3
        ):
            raise ValueError(
                f"image of type {type(img).__name__}, dtype {getattr(img, 'dtype', None)}, "
                f"shape {getattr(img, 'shape', None)}: expected a uint8 H x W x 3 RGB array"
            )
        if image_size is not None and min(img.shape[:2]) < image_size:
            raise ValueError(
                f"image shape {img.shape[:2]}: expected at least ({image_size}, {image_size}) "
                "for this model"
            )
        if not math.isfinite(self.height_to_bottom):
            raise ValueError(f"height_to_bottom {self.height_to_bottom}: expected a finite value")
        return self


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size`` x ``size`` square of an H x W x C image (App. D.1, inference)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        raise ValueError(f"image shape {(h, w)}: expected at least ({size}, {size}) to crop")
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


@dataclass(frozen=True)
class Action:
    """One action a = (t, r, g_close, g_open, e) of App. D.2 with the azimuth as an angle."""

    translation: tuple[float, float, float]  # m, base frame
    rotation: float  # rad, azimuth change about base z
    gripper_close: bool
    terminate: bool

    @property
    def gripper_open(self) -> bool:
        return not self.gripper_close

    def to_vector(self) -> np.ndarray:
        """The flat ``ACTION_DIM`` vector the Q-network sees."""
        return np.array(
            [*self.translation, math.sin(self.rotation), math.cos(self.rotation),
             float(self.gripper_close), float(not self.gripper_close), float(self.terminate)],
            dtype=np.float32,
        )

    @classmethod
    def from_vector(cls, vector: np.ndarray) -> Action:
        v = np.asarray(vector, dtype=np.float64)
        if v.shape != (ACTION_DIM,) or not np.all(np.isfinite(v)):
            raise ValueError(f"action vector {v!r}: expected {ACTION_DIM} finite values")
        s = action_slices()
        sin, cos = v[s["vertical_rotation"]]
        return cls(
            translation=tuple(float(x) for x in v[s["world_vector"]]),
            rotation=math.atan2(sin, cos),
            gripper_close=bool(v[s["gripper_close"]][0] > v[s["gripper_open"]][0]),
            terminate=bool(v[s["terminate"]][0] > 0.5),
        )

    @classmethod
    def stop(cls) -> Action:
        """The canonical terminating action: a terminating action is not executed, so every
        action with ``terminate`` set means this one (see :func:`terminate_index`)."""
        return cls((0.0, 0.0, 0.0), 0.0, False, True)

    def validate(self, bounds: ActionBounds) -> Action:
        """Raise ValueError naming the bad value when outside the workspace bounds."""
        t = np.asarray(self.translation, dtype=np.float64)
        limits = bounds.translation_limits()
        if t.shape != (3,) or not np.all(np.isfinite(t)):
            raise ValueError(f"translation {self.translation}: expected 3 finite values in m")
        if np.any(np.abs(t) > limits + 1e-6):
            raise ValueError(
                f"translation {self.translation}: expected |t| <= {limits.tolist()} m"
            )
        if not math.isfinite(self.rotation) or abs(self.rotation) > bounds.max_rotation + 1e-6:
            raise ValueError(
                f"rotation {self.rotation}: expected |r| <= {bounds.max_rotation:.4f} rad"
            )
        return self


@dataclass(frozen=True)
class CameraSpec:
    """The camera a model was trained on or a cell renders with: image size, field of view and
    pose (distance from the bin centre, yaw, pitch, aim height above the bin floor).

    The Q-network learns from raw pixels over the shoulder (Sec. 5, App. D.1), so a policy only
    transfers to the view it was trained on; models and bags record this to make that checkable.
    Width 0 (the default) means unknown: ROS parameters have no null, so configs that mirror them
    use this value where older runs recorded nothing.
    """

    width: int = 0  # px
    height: int = 0  # px
    fov_deg: float = 0.0  # vertical field of view
    distance: float = 0.0  # m from the point the camera aims at
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    target_height: float = 0.0  # m above the bin floor: the point the camera aims at

    def __post_init__(self) -> None:
        # ROS double parameters refuse ints, and a camera given as 48 must still equal 48.0
        # after a JSON round trip; so every non-size field is stored as a float.
        for name in ("fov_deg", "distance", "yaw_deg", "pitch_deg", "target_height"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def known(self) -> bool:
        return self.width > 0

    def to_dict(self) -> dict[str, int | float]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int | float]) -> CameraSpec:
        return cls(**data)

    def to_json(self) -> str:
        """Compact JSON, e.g. for a bag's ``custom_data`` (a string map)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CameraSpec:
        return cls.from_dict(json.loads(text))

    def describe(self) -> str:
        """One line for messages, named like the sim cell's ``camera_*`` parameters."""
        if not self.known:
            return "unknown"
        return (f"{self.width}x{self.height} px (fov_deg {self.fov_deg:g}, distance "
                f"{self.distance:g}, yaw_deg {self.yaw_deg:g}, pitch_deg {self.pitch_deg:g}, "
                f"target_height {self.target_height:g})")
