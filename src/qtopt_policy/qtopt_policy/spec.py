"""The QT-Opt MDP spec: one place that defines the state and action layout.

Kalashnikov et al. 2018, Sec. 5 and App. D. Messages (``qtopt_msgs``), network inputs and bag
fields derive from these tuples; a test keeps ``qtopt_msgs`` in step with them. The codecs
:data:`ACTION` and :data:`LOW_DIM_STATE` are the only code that knows where a field sits in a
flat vector.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from qtopt_policy.config_fields import bounded, check_bounds, describe_values, field_bounds

if TYPE_CHECKING:
    import torch

# Vectors the codecs index: numpy arrays or torch tensors, fields along the last axis.
ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")


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
    # Factors that bring the block to about unit range as a network input (App. E's context
    # layers), from the workspace bounds; None leaves it as it is.
    input_scale: Callable[[ActionBounds], ArrayLike] | None = None


# Action a (Sec. 5): Cartesian translation, azimuth change as (sin, cos), one-hot gripper
# command (close, open) and the learned termination bit.
ACTION_FIELDS: tuple[Field, ...] = (
    Field("world_vector", 3, FieldKind.CONTINUOUS, "gripper translation, m, base frame",
          lambda bounds: 1.0 / bounds.translation_limits()),
    # The cosine stays as it is: it is near 1 for per-step turns.
    Field("vertical_rotation", 2, FieldKind.CONTINUOUS, "(sin, cos) of the azimuth change",
          lambda bounds: (1.0 / math.sin(bounds.max_rotation), 1.0)),
    Field("gripper_close", 1, FieldKind.BINARY, "close the gripper (one-hot with open)"),
    Field("gripper_open", 1, FieldKind.BINARY, "open the gripper (one-hot with close)"),
    Field("terminate", 1, FieldKind.BINARY, "end the episode now; the rest is not executed"),
)

# State s (Sec. 5): camera image, gripper status and gripper height above the bin floor.
STATE_FIELDS: tuple[Field, ...] = (
    Field("image", 0, FieldKind.IMAGE, "rgb8 crop, H x W x 3"),
    Field("gripper_closed", 1, FieldKind.BINARY, "gripper is closed"),
    Field("height_to_bottom", 1, FieldKind.CONTINUOUS, "gripper height above bin floor, m",
          lambda bounds: (1.0 / NOMINAL_HEIGHT,)),
)

MAX_STEPS = 20  # Sec. 5: episodes last at most 20 time steps.
SUCCESS_REWARD = 1.0  # Sec. 5: reward 1 when an object is held above a height at the end.
STEP_PENALTY = -0.05  # Sec. 5: -0.05 for every step before termination.
GAMMA = 0.9  # Sec. 4 / App. C: discount factor.
PAPER_IMAGE_SIZE = 472  # App. E: the network sees a 472x472 crop of the 640x512 image.
CAMERA_SIZE = (640, 512)  # App. D: width x height of the real cell's camera.


@dataclass(frozen=True)
class ActionBounds:
    """Workspace hard bounds on one step's action (Sec. 5, App. D.2).

    The paper does not publish its per-step limits; these defaults suit a 30 cm deep bin reached
    in a few descent steps, and every cell and policy reads them from here.
    """

    max_translation_xy: float = bounded(0.05, ge=0)  # m per step along base x and y
    max_translation_z: float = bounded(0.08, ge=0)  # m per step along base z
    max_rotation: float = bounded(math.pi / 8, ge=0)  # rad of azimuth change per step

    def __post_init__(self) -> None:
        check_bounds(self)

    def translation_limits(self) -> np.ndarray:
        return np.array(
            [self.max_translation_xy, self.max_translation_xy, self.max_translation_z],
            dtype=np.float32,
        )


NOMINAL_HEIGHT = 0.3  # m: the gripper starts about this high above the bin floor


def format_values(values: Iterable[float]) -> str:
    """``(0.1, nan, -0.02)``: numbers on one line for error messages (numpy's repr wraps)."""
    return "(" + ", ".join(f"{float(x):.6g}" for x in values) + ")"


def one_line(err: BaseException | str) -> str:
    """An error's text on one line, for messages that quote it (some libraries' span several)."""
    return " ".join(str(err).split()) or type(err).__name__


class VectorCodec:
    """A flat float32 vector made of ``fields`` in order (Sec. 5): where each field sits, and
    encoding to it, for numpy arrays and torch tensors alike (any leading dimensions)."""

    def __init__(self, fields: tuple[Field, ...]) -> None:
        self.fields = fields
        self.slices: dict[str, slice] = {}
        start = 0
        for f in fields:
            self.slices[f.name] = slice(start, start + f.size)
            start += f.size
        self.size = start

    def index(self, name: str) -> int:
        """Position of the one-entry field ``name``."""
        s = self.slices[name]
        if s.stop - s.start != 1:
            raise ValueError(f"field {name!r} has {s.stop - s.start} entries: expected 1")
        return s.start

    def block(self, vector: ArrayT, name: str) -> ArrayT:
        """The entries of field ``name``: [..., size of the field] (a view)."""
        return vector[..., self.slices[name]]

    def entry(self, vector: ArrayT, name: str) -> ArrayT:
        """The one-entry field ``name``: [...]."""
        return vector[..., self.index(name)]

    def encode(self, **blocks: Any) -> np.ndarray | torch.Tensor:
        """Concatenate one block per field, named as the fields: torch tensors [..., size]
        stay tensors; anything else (numbers, sequences, arrays) becomes a float32 array."""
        if set(blocks) != set(self.slices):
            raise ValueError(f"fields {sorted(blocks)}: expected {sorted(self.slices)}")
        parts = [blocks[f.name] for f in self.fields]
        # A tensor exists only once torch is imported: the spec itself stays free of torch.
        torch = sys.modules.get("torch")
        is_torch = torch is not None and any(isinstance(p, torch.Tensor) for p in parts)
        if not is_torch:
            parts = [np.atleast_1d(np.asarray(p, dtype=np.float32)) for p in parts]
        for f, p in zip(self.fields, parts, strict=True):
            if p.shape[-1] != f.size:
                raise ValueError(f"{f.name} block of shape {tuple(p.shape)}: expected "
                                 f"{f.size} entries on the last axis")
        return torch.cat(parts, dim=-1) if is_torch else np.concatenate(parts, axis=-1)

    def encode_from(self, source: object) -> np.ndarray:
        """The vector of an object whose attributes are named as the fields (an
        :class:`Observation`, a ``qtopt_msgs`` message)."""
        return self.encode(**{f.name: getattr(source, f.name) for f in self.fields})

    def encode_batch(self, sources: Iterable[object]) -> np.ndarray:
        """:meth:`encode_from` for each source, stacked: [N, size] float32."""
        return np.stack([self.encode_from(s) for s in sources])

    def message_fields(self, vector: np.ndarray) -> dict[str, np.ndarray | bool]:
        """The fields of a message laid out like the spec (``qtopt_msgs/GraspAction``):
        continuous blocks as views of ``vector``, binary entries as bools."""
        return {f.name: self.block(vector, f.name) if f.kind is FieldKind.CONTINUOUS
                else bool(self.entry(vector, f.name) > 0.5) for f in self.fields}

    def input_scale(self, bounds: ActionBounds) -> np.ndarray:
        """Each field's ``input_scale`` under ``bounds`` (1 where it has none), float32."""
        return np.concatenate([
            np.ones(f.size, dtype=np.float32) if f.input_scale is None
            else np.asarray(f.input_scale(bounds), dtype=np.float32)
            for f in self.fields
        ])


class ActionCodec(VectorCodec):
    """The action vector a = (t, sin r, cos r, g_close, g_open, e) of Sec. 5, with named
    accessors; every module reads and builds action vectors through :data:`ACTION`."""

    def __init__(self) -> None:
        super().__init__(ACTION_FIELDS)
        # vertical_rotation holds (sin, cos) of the azimuth change, in that order.
        self.sin_index = self.slices["vertical_rotation"].start
        self.cos_index = self.sin_index + 1
        self.terminate_index = self.index("terminate")

    def translation(self, vector: ArrayT) -> ArrayT:
        """t in m, base frame: [..., 3]."""
        return self.block(vector, "world_vector")

    def sin(self, vector: ArrayT) -> ArrayT:
        return vector[..., self.sin_index]

    def cos(self, vector: ArrayT) -> ArrayT:
        return vector[..., self.cos_index]

    def gripper_close(self, vector: ArrayT) -> ArrayT:
        return self.entry(vector, "gripper_close")

    def gripper_open(self, vector: ArrayT) -> ArrayT:
        return self.entry(vector, "gripper_open")

    def terminate(self, vector: ArrayT) -> ArrayT:
        return self.entry(vector, "terminate")


ACTION = ActionCodec()
# The non-image state the network sees beside the action (App. E): gripper status and height.
LOW_DIM_STATE = VectorCodec(tuple(f for f in STATE_FIELDS if f.kind is not FieldKind.IMAGE))
ACTION_DIM = ACTION.size
LOW_DIM_STATE_DIM = LOW_DIM_STATE.size


def context_input_scale(bounds: ActionBounds = ActionBounds()) -> np.ndarray:
    """Per-entry factors that bring the network's non-image inputs (the action vector, then
    the low-dim state) to about unit range, from the fields' ``input_scale``: translations and
    the azimuth's sine by their per-step bounds, the height by ``NOMINAL_HEIGHT``; binary
    entries and the cosine as they are (App. E)."""
    return np.concatenate([ACTION.input_scale(bounds), LOW_DIM_STATE.input_scale(bounds)])


@dataclass(frozen=True)
class Observation:
    """The state s = (I, g_closed, g_height) of App. D.1; ``image`` is uint8 H x W x 3 RGB."""

    image: np.ndarray
    gripper_closed: bool
    height_to_bottom: float

    @classmethod
    def from_message(cls, msg: Any) -> Observation:
        """The validated state of a ``qtopt_msgs/Observation`` in either message flavour
        (rclpy's or rosbags'); the image is not copied. Raises ValueError naming the field."""
        return cls(rgb8_image(msg.image), bool(msg.gripper_closed),
                   float(msg.height_to_bottom)).validate()

    def validate(self, image_size: int | None = None,
                 camera: CameraSpec | None = None) -> Observation:
        """Raise ValueError naming the bad value; return self when valid. ``image_size``: the
        smallest side the network crops from; ``camera``: when known, the frame size."""
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or (
            img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0
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
        if camera is not None and camera.known and img.shape[:2] != (camera.height,
                                                                       camera.width):
            raise ValueError(f"image {img.shape[1]}x{img.shape[0]} px: expected the "
                             f"{camera.width}x{camera.height} px frames of its camera")
        if not math.isfinite(self.height_to_bottom):
            raise ValueError(f"height_to_bottom {self.height_to_bottom}: expected a finite value")
        return self


RGB8 = "rgb8"


def rgb8_image(image: Any) -> np.ndarray:
    """The ``H x W x 3`` uint8 view of a ``sensor_msgs/Image`` in either message flavour
    (rclpy's or rosbags'); raise ValueError naming what does not fit ``rgb8``."""
    if image.encoding != RGB8:
        raise ValueError(f"image encoding {image.encoding!r}: expected {RGB8!r}")
    expected = image.height * image.width * 3
    data = np.frombuffer(image.data, dtype=np.uint8)
    if image.step != 3 * image.width or data.size != expected:
        raise ValueError(
            f"image of {image.width}x{image.height} has step {image.step} and {data.size} "
            f"bytes: expected step {3 * image.width} and {expected} bytes"
        )
    return data.reshape(image.height, image.width, 3)


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
        """The flat ``ACTION_DIM`` float32 vector the Q-network sees."""
        return ACTION.encode(
            world_vector=self.translation,
            vertical_rotation=(math.sin(self.rotation), math.cos(self.rotation)),
            gripper_close=float(self.gripper_close), gripper_open=float(self.gripper_open),
            terminate=float(self.terminate),
        )

    @classmethod
    def from_vector(cls, vector: np.ndarray, strict: bool = False) -> Action:
        """The action of a flat vector; raise ValueError naming the bad field. ``strict``
        (vectors from messages and files, not from CEM) also requires binary entries of 0 or 1,
        exactly one gripper command and a unit (sin, cos)."""
        v = np.asarray(vector, dtype=np.float64)
        if v.shape != (ACTION_DIM,):
            raise ValueError(f"action vector of shape {v.shape} {format_values(v.ravel())}: "
                             f"expected {ACTION_DIM} values")
        for f in ACTION.fields:
            block = ACTION.block(v, f.name)
            if not np.all(np.isfinite(block)):
                raise ValueError(f"{f.name} {format_values(block)}: expected finite values")
            if strict and f.kind is FieldKind.BINARY and block[0] not in (0.0, 1.0):
                raise ValueError(f"{f.name} {format_values(block)}: expected 0 or 1")
        if strict and ACTION.gripper_close(v) == ACTION.gripper_open(v):
            raise ValueError(f"gripper_close {bool(ACTION.gripper_close(v))} and gripper_open "
                             f"{bool(ACTION.gripper_open(v))}: expected exactly one of them set")
        norm = math.hypot(ACTION.sin(v), ACTION.cos(v))
        if strict and abs(norm - 1.0) > 1e-3:
            rotation = format_values(ACTION.block(v, "vertical_rotation"))
            raise ValueError(f"vertical_rotation {rotation}: expected (sin, cos) of an angle, "
                             f"norm 1 (got {norm:.4g})")
        return cls(
            translation=tuple(float(x) for x in ACTION.translation(v)),
            rotation=math.atan2(ACTION.sin(v), ACTION.cos(v)),
            gripper_close=bool(ACTION.gripper_close(v) > ACTION.gripper_open(v)),
            terminate=bool(ACTION.terminate(v) > 0.5),
        )

    @classmethod
    def stop(cls) -> Action:
        """The canonical terminating action: a terminating action is not executed, so every
        action with ``terminate`` set means this one (``ACTION.terminate_index``)."""
        return cls((0.0, 0.0, 0.0), 0.0, False, True)

    def validate(self, bounds: ActionBounds) -> Action:
        """Raise ValueError naming the bad value when outside the workspace bounds."""
        t = np.asarray(self.translation, dtype=np.float64)
        limits = bounds.translation_limits()
        if t.shape != (3,) or not np.all(np.isfinite(t)):
            raise ValueError(f"translation {format_values(t.ravel())}: expected 3 finite values "
                             "in m")
        if np.any(np.abs(t) > limits + 1e-6):
            raise ValueError(f"translation {format_values(t)}: expected |t| <= "
                             f"{format_values(limits)} m")
        if not math.isfinite(self.rotation) or abs(self.rotation) > bounds.max_rotation + 1e-6:
            raise ValueError(
                f"rotation {float(self.rotation)}: expected |r| <= {bounds.max_rotation:.4f} rad"
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

    width: int = bounded(0, ge=0)  # image width, px; 0: the camera is unknown
    height: int = bounded(0, ge=0)  # image height, px
    fov_deg: float = bounded(0.0, ge=0, lt=180)  # vertical field of view, degrees
    distance: float = bounded(0.0, ge=0)  # m from the point the camera aims at
    yaw_deg: float = 0.0  # degrees around the aim point
    pitch_deg: float = 0.0  # degrees; negative looks down
    target_height: float = 0.0  # m above the bin floor: the point the camera aims at

    def __post_init__(self) -> None:
        # ROS double parameters refuse ints, and a camera given as 48 must still equal 48.0
        # after a JSON round trip; so every non-size field is stored as a float.
        for f in dataclasses.fields(self):
            convert = int if f.name in ("width", "height") else float
            value = getattr(self, f.name)
            number = isinstance(value, (int, float, np.integer, np.floating))
            if isinstance(value, bool) or not number or (
                    convert is int and not float(value).is_integer()):
                raise ValueError(f"{f.name} {value!r}: expected "
                                 f"{describe_values(convert, field_bounds(f))}")
            object.__setattr__(self, f.name, convert(value))
        check_bounds(self)

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
