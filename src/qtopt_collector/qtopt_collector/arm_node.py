"""arm_node: the arm driver of a cell, ``arm/command`` and ``cell/reset`` over a backend.

MDP steps are checked against the workspace step bounds before any backend moves."""

from __future__ import annotations

from collections.abc import Callable

from rclpy.node import Node

from qtopt_collector.backends import ArmBackend
from qtopt_msgs.srv import ArmCommand, ResetCell
from qtopt_policy.ros_names import ARM_COMMAND_SERVICE, RESET_CELL_SERVICE
from qtopt_policy.spec import Action, ActionBounds


class ArmNode(Node):
    def __init__(self, make_backend: Callable[[Node], ArmBackend],
                 bounds: ActionBounds = ActionBounds(), **kwargs) -> None:
        super().__init__("arm", **kwargs)
        self.backend = make_backend(self)
        self.bounds = bounds
        self.create_service(ArmCommand, ARM_COMMAND_SERVICE, self._on_command)
        self.create_service(ResetCell, RESET_CELL_SERVICE, self._on_reset)

    def _on_command(self, request: ArmCommand.Request, response: ArmCommand.Response):
        b = self.backend
        step = Action(tuple(float(x) for x in request.translation), float(request.rotation),
                      False, False)
        commands = {
            ArmCommand.Request.MOVE_RELATIVE: lambda: b.move_relative(
                step.validate(self.bounds).translation, step.rotation),
            ArmCommand.Request.MOVE_TO_HEIGHT: lambda: b.move_to_height(float(request.height)),
            ArmCommand.Request.OUT_OF_VIEW: b.out_of_view,
            ArmCommand.Request.OVER_BIN: lambda: b.over_bin(float(request.height)),
        }
        if request.command not in commands:
            response.success = False
            response.message = f"command {request.command}: expected one of {sorted(commands)}"
            return response
        try:
            response.height_to_bottom = float(commands[request.command]())
            response.success = True
        except (ValueError, RuntimeError, TimeoutError) as err:
            response.success, response.message = False, str(err)
        return response

    def _on_reset(self, request: ResetCell.Request, response: ResetCell.Response):
        try:
            ids, height = self.backend.reset(int(request.seed))
        except (ValueError, RuntimeError, TimeoutError) as err:
            response.success, response.message = False, str(err)
            return response
        response.object_ids, response.height_to_bottom = ids, float(height)
        response.success = True
        return response
