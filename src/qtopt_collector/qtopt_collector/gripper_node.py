"""gripper_node: ``gripper/command`` (std_srvs/SetBool, true closes) and ``gripper/closed``."""

from __future__ import annotations

from collections.abc import Callable

from rclpy.node import Node
from std_msgs.msg import Bool
from std_srvs.srv import SetBool

from qtopt_collector.backends import GripperBackend
from qtopt_policy.ros.qos import LATCHED
from qtopt_policy.ros_names import GRIPPER_CLOSED_TOPIC, GRIPPER_COMMAND_SERVICE


class GripperNode(Node):
    def __init__(self, make_backend: Callable[[Node], GripperBackend], **kwargs) -> None:
        super().__init__("gripper", **kwargs)
        self.backend = make_backend(self)
        self.state = self.create_publisher(Bool, GRIPPER_CLOSED_TOPIC, LATCHED)
        self.create_service(SetBool, GRIPPER_COMMAND_SERVICE, self._on_command)

    def _on_command(self, request: SetBool.Request, response: SetBool.Response):
        try:
            self.backend.set_closed(bool(request.data))
        except (RuntimeError, TimeoutError) as err:
            response.success, response.message = False, str(err)
            return response
        self.state.publish(Bool(data=bool(request.data)))
        response.success = True
        response.message = "closed" if request.data else "open"
        return response
