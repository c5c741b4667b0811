"""policy_node: serves SelectAction by CEM over a hot-reloaded TorchScript Q-network.

A thin adapter over :class:`~qtopt_policy.policy_server.PolicyServer` (App. F.1). Requests run
in one callback group, model reloads (``model_updates`` topic, periodic check of
``model_path``) in another, on a multi-threaded executor, so serving never waits for a load.
A request the policy cannot serve (no model yet, an image that is not rgb8 or not the model's
size, a non-finite height, an unknown policy) gets ``success`` false and a one-line
``message``; the node goes on serving.
"""

from __future__ import annotations

import math
import sys

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from qtopt_msgs.msg import ModelUpdate
from qtopt_msgs.srv import SelectAction
from qtopt_policy.msg_conversions import action_to_msg, observation_from_msg
from qtopt_policy.policy_server import NoModelError, PolicyServer, PolicyServerConfig
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros.qos import MODEL_UPDATE_QOS
from qtopt_policy.ros_names import MODEL_UPDATES_TOPIC, SELECT_ACTION_SERVICE
from qtopt_policy.ros_params import declare_config
from qtopt_policy.spec import one_line
from qtopt_policy.torchscript_model import ModelLoadError


class PolicyNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("policy_node", **kwargs)
        self.config = declare_config(self, PolicyServerConfig)
        self.server = PolicyServer(self.config)
        serve_group = MutuallyExclusiveCallbackGroup()
        reload_group = MutuallyExclusiveCallbackGroup()
        self.create_service(SelectAction, SELECT_ACTION_SERVICE, self._on_select_action,
                            callback_group=serve_group)
        self.create_subscription(ModelUpdate, MODEL_UPDATES_TOPIC, self._on_model_update,
                                 MODEL_UPDATE_QOS, callback_group=reload_group)
        if self.config.reload_period_s > 0:
            self.create_timer(self.config.reload_period_s, self._on_reload_timer,
                              callback_group=reload_group)
        if self.config.model_path:
            self._load(self.config.model_path)
        self.get_logger().info(f"policy_node on {self.server.device}, config {self.config}")

    def _load(self, path: str, sha256: str = "", version: int | None = None) -> None:
        try:
            self.get_logger().info(self.server.load(path, sha256, version))
        except ModelLoadError as err:
            self.get_logger().error(
                f"rejected model: {err}; still serving version {self.server.version}"
            )

    def _on_model_update(self, msg: ModelUpdate) -> None:
        if msg.version <= self.server.version:
            self.get_logger().info(
                f"ignoring model update version {msg.version}: serving {self.server.version}"
            )
            return
        self._load(msg.model_path, msg.sha256, msg.version)

    def _on_reload_timer(self) -> None:
        try:
            described = self.server.reload_if_changed()
        except ModelLoadError as err:
            self.get_logger().error(
                f"rejected model: {err}; still serving version {self.server.version}"
            )
            return
        if described:
            self.get_logger().info(f"periodic reload: {described}")

    def _on_select_action(
        self, request: SelectAction.Request, response: SelectAction.Response
    ) -> SelectAction.Response:
        try:
            observation = observation_from_msg(request.observation)
            output, version = self.server.select(observation, request.step, request.policy)
        except (ValueError, NoModelError) as err:
            return self._refuse(response, f"rejected request: {err}")
        except Exception as err:  # a failure inside CEM must not end the service
            self.get_logger().error(f"SelectAction failed: {type(err).__name__}: {err}")
            return self._refuse(response, f"internal error: {type(err).__name__}: {err}")
        response.action = action_to_msg(output.action)
        response.q_value = output.q_value
        response.model_version = version
        response.success = True
        return response


    def _refuse(self, response: SelectAction.Response, message: str) -> SelectAction.Response:
        """The answer to a request that gets no action: success false and why (one line)."""
        response.success = False
        response.message = one_line(message)
        response.q_value = math.nan
        response.model_version = self.server.version
        return response


def main(args: list[str] | None = None) -> int:
    return spin_nodes(lambda: [PolicyNode()], threads=3, args=args)


if __name__ == "__main__":
    sys.exit(main())
