"""Episodes as ``qtopt_msgs/msg/Episode`` CDR bytes, and their steps as standard messages,
without rclpy.

The ``rosbags`` type store learns the qtopt_msgs definitions from the installed ``.msg`` files
(found through the ament index), so its type hashes equal rosidl's and rclpy's
``deserialize_message`` reads what it writes. The recorder node receives the same bytes from a
raw subscription; both paths write identical bags.

:func:`step_messages` gives the same steps to tools that know only standard types (Foxglove,
``ros2 bag play``, image viewers): each step's camera frame as ``sensor_msgs/Image`` or
``CompressedImage`` and its gripper state as ``std_msgs`` messages, on topics in the cell's
namespace.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from qtopt_policy.episode_record import (
    EpisodeLimits,
    EpisodeRecord,
    InvalidEpisodeError,
    StepRecord,
    Termination,
    error_context,
    validate_episode,
)
from qtopt_policy.ros_env import package_share_directory
from qtopt_policy.ros_names import CAMERA_IMAGE_TOPIC, GRIPPER_CLOSED_TOPIC
from qtopt_policy.spec import ACTION, Action, CameraSpec, Observation, one_line

EPISODE_TYPE = "qtopt_msgs/msg/Episode"
EPISODE_TOPIC = "/episodes"
CAMERA_FRAME = "camera_optical_frame"  # frame_id of the cell camera's images

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"

# Per-step topics, relative to the cell's namespace. Frames go where the camera node publishes
# them ("raw": rgb8 Image) or under image_transport's "compressed" name ("jpeg", "png"); the
# closed bit on the gripper node's own topic and type, so a played bag stands in for both; the
# height of the observation, which no live topic carries, beside it.
STEP_IMAGE_FORMATS = ("raw", "jpeg", "png")
COMPRESSED_IMAGE_TOPIC = f"{CAMERA_IMAGE_TOPIC}/compressed"
STEP_GRIPPER_TOPIC = GRIPPER_CLOSED_TOPIC
STEP_HEIGHT_TOPIC = "gripper/height_to_bottom"
JPEG_QUALITY = 95  # image_transport's compressed default
# The record keeps no capture times, so a bag spaces an episode's steps this far apart, ending
# at the Episode message: under a step's real duration (the sim's fastest is ~45 ms), so that
# pushing an episode after the previous one (the recorder does) seldom shifts it.
STEP_SPACING_NS = 10_000_000


class BagMessage(NamedTuple):
    """One message to write to a bag: topic, type name, log time and CDR bytes."""

    topic: str
    msgtype: str
    stamp_ns: int
    data: bytes


@functools.cache
def typestore() -> Typestore:
    """ROS 2 Kilted's types plus qtopt_msgs, read from the installed interface files."""
    store = get_typestore(Stores.ROS2_KILTED)
    share = package_share_directory("qtopt_msgs") / "msg"
    types = {}
    for path in sorted(share.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"qtopt_msgs/msg/{path.stem}"))
    store.register(types)
    return store


def _t(name: str):
    return typestore().types[name]


def _stamp(ns: int):
    return _t("builtin_interfaces/msg/Time")(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _camera_header(stamp_ns: int):
    return _t("std_msgs/msg/Header")(stamp=_stamp(stamp_ns), frame_id=CAMERA_FRAME)


def _image(image: np.ndarray, header):
    h, w = image.shape[:2]
    return _t(IMAGE_TYPE)(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0,
                          step=3 * w, data=np.ascontiguousarray(image).reshape(-1))


def _observation(obs: Observation, stamp_ns: int):
    header = _camera_header(stamp_ns)
    return _t("qtopt_msgs/msg/Observation")(
        header=header, image=_image(obs.image, header), gripper_closed=bool(obs.gripper_closed),
        height_to_bottom=float(obs.height_to_bottom),
    )


def _action(action: Action):
    return _t("qtopt_msgs/msg/GraspAction")(**ACTION.message_fields(action.to_vector()))


def serialize_episode(record: EpisodeRecord, stamp_ns: int | None = None) -> bytes:
    """CDR bytes of the ``Episode`` message for ``record``."""
    stamp_ns = time.time_ns() if stamp_ns is None else stamp_ns
    steps = [
        _t("qtopt_msgs/msg/Transition")(
            step=i, observation=_observation(s.observation, stamp_ns), action=_action(s.action),
            reward=float(s.reward), done=bool(s.done), q_value=float(s.q_value),
        )
        for i, s in enumerate(record.steps)
    ]
    ground_truth = -1 if record.ground_truth is None else int(record.ground_truth)
    msg = _t(EPISODE_TYPE)(
        header=_t("std_msgs/msg/Header")(stamp=_stamp(stamp_ns), frame_id=record.cell_id),
        episode_id=record.episode_id, cell_id=record.cell_id, policy_name=record.policy_name,
        model_version=record.model_version, termination=int(record.termination), steps=steps,
        final_observation=_observation(record.final_observation, stamp_ns),
        success=record.success, ground_truth=ground_truth, total_reward=record.total_reward,
        object_ids=list(record.object_ids), seed=record.seed,
    )
    return bytes(typestore().serialize_cdr(msg, EPISODE_TYPE))


def step_topic(cell_id: str, name: str) -> str:
    """The absolute name of per-step topic ``name`` in the namespace of cell ``cell_id``."""
    return f"/{cell_id}/{name}" if cell_id else f"/{name}"


def encode_image(image: np.ndarray, image_format: str) -> bytes:
    """An RGB frame as ``image_format`` ("jpeg" or "png") file bytes."""
    import cv2  # here: the learner and the command line import this module without frames

    # 4:4:4: at 72 px, 4:2:0's 2x2 chroma blocks smear small objects' colours (errors up to 80
    # levels against 19, for a fifth more bytes)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444] if image_format == "jpeg" else []
    ok, data = cv2.imencode(f".{image_format}", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} frame as {image_format}")
    return data.tobytes()


def _frame(image: np.ndarray, stamp_ns: int, image_format: str):
    """(topic in the cell's namespace, type, message) of a camera frame in ``image_format``."""
    header = _camera_header(stamp_ns)
    if image_format == "raw":
        return CAMERA_IMAGE_TOPIC, IMAGE_TYPE, _image(image, header)
    data = np.frombuffer(encode_image(image, image_format), np.uint8)
    return COMPRESSED_IMAGE_TOPIC, COMPRESSED_IMAGE_TYPE, _t(COMPRESSED_IMAGE_TYPE)(
        header=header, format=image_format, data=data)


def step_messages(record: EpisodeRecord, first_ns: int, image_format: str = "raw"
                  ) -> list[BagMessage]:
    """Each step's camera frame (``sensor_msgs/Image``, or ``CompressedImage`` for "jpeg" and
    "png"), gripper closed bit (``std_msgs/Bool``) and height above the bin floor
    (``std_msgs/Float32``, m) on the topics of ``record.cell_id``, step ``i`` stamped
    ``first_ns + i * STEP_SPACING_NS``."""
    if image_format not in STEP_IMAGE_FORMATS:
        raise ValueError(f"image format {image_format!r}: expected one of {STEP_IMAGE_FORMATS}")
    store = typestore()
    messages = []
    for i, step in enumerate(record.steps):
        stamp_ns = first_ns + i * STEP_SPACING_NS
        obs = step.observation
        for name, msgtype, value in (
                _frame(obs.image, stamp_ns, image_format),
                (STEP_GRIPPER_TOPIC, "std_msgs/msg/Bool",
                 _t("std_msgs/msg/Bool")(data=bool(obs.gripper_closed))),
                (STEP_HEIGHT_TOPIC, "std_msgs/msg/Float32",
                 _t("std_msgs/msg/Float32")(data=float(obs.height_to_bottom)))):
            messages.append(BagMessage(step_topic(record.cell_id, name), msgtype, stamp_ns,
                                       bytes(store.serialize_cdr(value, msgtype))))
    return messages


def deserialize_episode(data: bytes | memoryview,
                        limits: EpisodeLimits = EpisodeLimits()) -> EpisodeRecord:
    """Inverse of :func:`serialize_episode`, checked by
    :func:`~qtopt_policy.episode_record.validate_episode`; raises InvalidEpisodeError (a
    ValueError) with one line naming the episode, the field and what was expected."""
    try:
        msg = typestore().deserialize_cdr(data, EPISODE_TYPE)
    except Exception as err:  # rosbags raises struct, index, unicode and assertion errors
        raise InvalidEpisodeError(f"{len(data)} bytes are no {EPISODE_TYPE} message: "
                                  f"{type(err).__name__}: {one_line(err)}") from None
    episode_id = msg.episode_id
    try:
        steps = []
        for i, t in enumerate(msg.steps):
            with error_context(f"step {i} observation"):
                observation = Observation.from_message(t.observation)
            with error_context(f"step {i} action"):
                action = Action.from_vector(ACTION.encode_from(t.action), strict=True)
            steps.append(StepRecord(observation, action, float(t.reward), bool(t.done),
                                    float(t.q_value)))
        with error_context("final_observation"):
            final = Observation.from_message(msg.final_observation)
        record = EpisodeRecord(
            episode_id=episode_id, cell_id=msg.cell_id, policy_name=msg.policy_name,
            model_version=int(msg.model_version), termination=Termination.of(msg.termination),
            steps=steps, final_observation=final, success=bool(msg.success),
            ground_truth=None if msg.ground_truth < 0 else bool(msg.ground_truth),
            object_ids=list(msg.object_ids), seed=int(msg.seed),
        )
    except ValueError as err:
        raise InvalidEpisodeError(f"episode {episode_id!r}: {err}") from None
    return validate_episode(record, limits)


class EpisodeIntake:
    """Where a long-running node takes live ``Episode`` messages (raw CDR bytes): a malformed
    one is dropped with one logged error line and counted, and the node goes on. Without a
    known camera the first good episode's frame size becomes the one expected."""

    def __init__(self, limits: EpisodeLimits, log_error: Callable[[str], None]) -> None:
        self.limits = limits
        self.log_error = log_error
        self.accepted = 0
        self.rejected = 0

    def take(self, data: bytes) -> EpisodeRecord | None:
        """The episode of ``data``, or None when it is malformed (logged and counted)."""
        try:
            record = deserialize_episode(data, self.limits)
        except InvalidEpisodeError as err:
            self.rejected += 1
            self.log_error(f"dropped a malformed episode ({self.rejected} so far): {err}")
            return None
        self.accepted += 1
        if not self.limits.camera.known:  # one frame size from now on: the replay stacks them
            height, width = record.steps[0].observation.image.shape[:2]
            self.limits = dataclasses.replace(self.limits,
                                              camera=CameraSpec(width=width, height=height))
        return record
