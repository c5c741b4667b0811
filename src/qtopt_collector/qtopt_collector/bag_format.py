"""Episodes as ``qtopt_msgs/msg/Episode`` CDR bytes, without rclpy.

The ``rosbags`` type store learns the qtopt_msgs definitions from the installed ``.msg`` files
(found through the ament index), so its type hashes equal rosidl's and rclpy's
``deserialize_message`` reads what it writes. The recorder node receives the same bytes from a
raw subscription; both paths write identical bags.
"""

from __future__ import annotations

import functools
import time

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from qtopt_policy.episode_record import EpisodeRecord, StepRecord, Termination
from qtopt_policy.ros_env import package_share_directory
from qtopt_policy.spec import ACTION, Action, Observation

EPISODE_TYPE = "qtopt_msgs/msg/Episode"
EPISODE_TOPIC = "/episodes"


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


def _observation(obs: Observation, stamp_ns: int):
    h, w = obs.image.shape[:2]
    header = _t("std_msgs/msg/Header")(stamp=_stamp(stamp_ns), frame_id="camera_optical_frame")
    image = _t("sensor_msgs/msg/Image")(
        header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w,
        data=np.ascontiguousarray(obs.image).reshape(-1),
    )
    return _t("qtopt_msgs/msg/Observation")(
        header=header, image=image, gripper_closed=bool(obs.gripper_closed),
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


def _observation_from(msg) -> Observation:
    img = msg.image
    if img.encoding != "rgb8" or img.step != 3 * img.width or len(img.data) != (
        3 * img.width * img.height
    ):
        raise ValueError(
            f"episode image {img.width}x{img.height} encoding {img.encoding!r} with "
            f"{len(img.data)} bytes: expected rgb8 with {3 * img.width * img.height} bytes"
        )
    image = np.asarray(img.data, dtype=np.uint8).reshape(img.height, img.width, 3)
    return Observation(image, bool(msg.gripper_closed), float(msg.height_to_bottom))


def deserialize_episode(data: bytes | memoryview) -> EpisodeRecord:
    """Inverse of :func:`serialize_episode`; raises ValueError on malformed content."""
    msg = typestore().deserialize_cdr(data, EPISODE_TYPE)
    steps = [
        StepRecord(
            observation=_observation_from(t.observation),
            action=Action.from_vector(ACTION.encode_from(t.action)),
            reward=float(t.reward), done=bool(t.done),
            q_value=float(t.q_value),
        )
        for t in msg.steps
    ]
    return EpisodeRecord(
        episode_id=msg.episode_id, cell_id=msg.cell_id, policy_name=msg.policy_name,
        model_version=int(msg.model_version), termination=Termination(msg.termination),
        steps=steps, final_observation=_observation_from(msg.final_observation),
        success=bool(msg.success),
        ground_truth=None if msg.ground_truth < 0 else bool(msg.ground_truth),
        object_ids=list(msg.object_ids), seed=int(msg.seed),
    )
