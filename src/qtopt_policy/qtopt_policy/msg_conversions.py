"""Conversions between numpy arrays and ``sensor_msgs`` / ``qtopt_msgs`` messages.

The adapter layer between the ROS-free core and the nodes: it imports message types but no
rclpy. Images are ``rgb8`` (Sec. 5: the state holds an RGB image).
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from qtopt_msgs.msg import GraspAction, Observation
from qtopt_policy import spec


def image_to_msg(image: np.ndarray, frame_id: str = "camera_optical_frame") -> Image:
    """Wrap an ``H x W x 3`` uint8 RGB array in a ``sensor_msgs/Image`` (rgb8)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image has dtype {image.dtype} and shape {image.shape}: expected uint8 H x W x 3 RGB"
        )
    msg = Image()
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = spec.RGB8
    msg.is_bigendian = 0
    msg.step = 3 * msg.width
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def image_from_msg(msg: Image) -> np.ndarray:
    """Return the ``H x W x 3`` uint8 view of an rgb8 ``sensor_msgs/Image`` (no copy)."""
    return spec.rgb8_image(msg)


def observation_to_msg(
    image: np.ndarray, gripper_closed: bool, height_to_bottom: float
) -> Observation:
    """Build an ``Observation`` message from the state of Sec. 5."""
    if not np.isfinite(height_to_bottom):
        raise ValueError(f"height_to_bottom {height_to_bottom}: expected a finite height in m")
    msg = Observation()
    msg.image = image_to_msg(image)
    msg.header.frame_id = msg.image.header.frame_id
    msg.gripper_closed = bool(gripper_closed)
    msg.height_to_bottom = float(height_to_bottom)
    return msg


def observation_from_msg(msg: Observation) -> spec.Observation:
    """The spec's Observation from an ``Observation`` message (image not copied)."""
    return spec.Observation.from_message(msg)


def action_to_msg(action: spec.Action) -> GraspAction:
    """The ``GraspAction`` message of ``action``: its fields are the spec's action fields."""
    return GraspAction(**spec.ACTION.message_fields(action.to_vector()))


def action_from_msg(msg: GraspAction) -> spec.Action:
    """The spec's Action of a ``GraspAction``; raise ValueError naming a bad field (NaN, both
    or neither gripper command, a (sin, cos) that is no angle)."""
    return spec.Action.from_vector(spec.ACTION.encode_from(msg), strict=True)
