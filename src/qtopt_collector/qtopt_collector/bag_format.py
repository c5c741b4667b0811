"""Episodes as ``qtopt_msgs/msg/Episode`` CDR bytes, without rclpy.

The ``rosbags`` type store learns the qtopt_msgs definitions from the installed ``.msg`` files
(found through the ament index), so its type hashes equal rosidl's and rclpy's
``deserialize_message`` reads what it writes. The recorder node receives the same bytes from a
raw subscription; both paths write identical bags.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable

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
from qtopt_policy.spec import ACTION, Action, CameraSpec, Observation, one_line

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
