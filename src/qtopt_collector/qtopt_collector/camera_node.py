"""camera_node: serves ``camera/capture`` and republishes each frame on ``camera/image_raw``."""

from __future__ import annotations

from collections.abc import Callable

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from qtopt_collector.backends import CameraBackend
from qtopt_msgs.srv import CaptureImage
from qtopt_policy.msg_conversions import image_to_msg
from qtopt_policy.ros_names import CAMERA_CAPTURE_SERVICE, CAMERA_IMAGE_TOPIC


class CameraNode(Node):
    def __init__(self, make_backend: Callable[[Node], CameraBackend], **kwargs) -> None:
        super().__init__("camera", **kwargs)
        self.backend = make_backend(self)
        self.frames = self.create_publisher(Image, CAMERA_IMAGE_TOPIC, qos_profile_sensor_data)
        self.create_service(CaptureImage, CAMERA_CAPTURE_SERVICE, self._on_capture)

    def _on_capture(self, request, response):
        try:
            image = image_to_msg(self.backend.capture())
        except (RuntimeError, ValueError, TimeoutError) as err:
            response.success, response.message = False, str(err)
            return response
        image.header.stamp = self.get_clock().now().to_msg()
        self.frames.publish(image)
        response.image, response.success = image, True
        return response
