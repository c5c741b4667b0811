"""success_node: the drop test and image subtraction of App. D.3 as a service.

``success/detect`` drives the cell's arm, gripper and camera through their services (the same
choreography as the in-process simulator, :func:`run_drop_test`) and labels the grasp with
:func:`detect_grasp_success`. Where ``ground_truth_service`` names a service (the simulator's
``sim/held_object``), its answer is reported beside the label.

With ``label`` "truth" (simulation only) the node instead lifts, asks the ground-truth service
and opens the gripper so the object falls back into the bin, as ``SimCell.label_grasp`` does in
process. The paper labels by the drop test (Kalashnikov et al. 2018, App. D.3); in simulation
the truth gives the label without the drop test's motions.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger

from qtopt_collector.ros.service_calls import ServiceCaller
from qtopt_collector.success_detection import (
    DropTestConfig,
    DropTestRig,
    detect_grasp_success,
    run_drop_test,
)
from qtopt_msgs.srv import ArmCommand, CaptureImage, DetectGraspSuccess
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.msg_conversions import image_from_msg, image_to_msg
from qtopt_policy.names import LABELS
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros_names import (
    ARM_COMMAND_SERVICE,
    CAMERA_CAPTURE_SERVICE,
    GRIPPER_COMMAND_SERVICE,
    SUCCESS_DETECT_SERVICE,
)
from qtopt_policy.ros_params import declare_config


@dataclass(frozen=True)
class SuccessNodeConfig:
    ground_truth_service: str = ""  # "sim/held_object" in simulation; "" on a real cell
    # "detector": drop test and image subtraction (App. D.3, what a real cell does); "truth":
    # the ground-truth service's answer after the lift (needs ground_truth_service).
    label: str = "detector"
    timeout_s: float = bounded(60.0, gt=0)  # s to wait for the arm, camera and truth services
    # In simulation the graph passes the sim cell's, so the node labels as the cell does in
    # process.
    drop_test: DropTestConfig = field(default_factory=DropTestConfig)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.label not in LABELS:
            raise ValueError(f"label {self.label!r}: expected one of {LABELS}")
        if self.label == "truth" and not self.ground_truth_service:
            raise ValueError("label 'truth' needs a ground_truth_service (the simulator's "
                             "sim/held_object); a real cell labels with the detector")


def label_by_truth(rig: DropTestRig) -> bool:
    """Lift, read the simulator's truth, open the gripper so a held object falls back into the
    bin; return the truth. Raises RuntimeError where the rig cannot know it (a real cell)."""
    rig.lift()
    held = rig.held_object_ground_truth()
    if held is None:
        raise RuntimeError("no ground truth: label 'truth' needs a ground_truth_service")
    rig.open_gripper()
    return held


class RosDropTestRig:
    """The drop test's motions and images through the cell's services."""

    def __init__(self, calls: ServiceCaller, config: SuccessNodeConfig) -> None:
        self.calls = calls
        self.config = config

    def _arm(self, command: int, height: float = 0.0) -> None:
        self.calls.call(ArmCommand, ARM_COMMAND_SERVICE,
                        ArmCommand.Request(command=command, height=height))

    def lift(self) -> None:
        self._arm(ArmCommand.Request.MOVE_TO_HEIGHT, self.config.drop_test.lift_height)

    def held_object_ground_truth(self) -> bool | None:
        if not self.config.ground_truth_service:
            return None
        answer = self.calls.call(Trigger, self.config.ground_truth_service, Trigger.Request(),
                                 ok_field=None)
        return bool(answer.success)

    def move_out_of_view(self) -> None:
        self._arm(ArmCommand.Request.OUT_OF_VIEW)

    def capture(self) -> np.ndarray:
        response = self.calls.call(CaptureImage, CAMERA_CAPTURE_SERVICE,
                                   CaptureImage.Request())
        return image_from_msg(response.image).copy()

    def return_over_bin(self) -> None:
        self._arm(ArmCommand.Request.OVER_BIN, self.config.drop_test.lift_height)

    def open_gripper(self) -> None:
        self.calls.call(SetBool, GRIPPER_COMMAND_SERVICE, SetBool.Request(data=False))


class SuccessNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("success_detector", **kwargs)
        self.config = declare_config(self, SuccessNodeConfig)
        self.rig = RosDropTestRig(ServiceCaller(self, self.config.timeout_s), self.config)
        self.create_service(DetectGraspSuccess, SUCCESS_DETECT_SERVICE, self._on_detect,
                            callback_group=MutuallyExclusiveCallbackGroup())

    def _on_detect(self, request, response: DetectGraspSuccess.Response):
        if self.config.label == "truth":
            try:
                held = label_by_truth(self.rig)
            except (TimeoutError, RuntimeError) as err:
                response.ok, response.message = False, f"truth label failed: {err}"
                return response
            # No drop test: the images stay empty and the changed fractions 0.
            response.success, response.ground_truth, response.ok = held, int(held), True
            return response
        try:
            drop = run_drop_test(self.rig)
        except (TimeoutError, RuntimeError, ValueError) as err:
            response.ok, response.message = False, f"drop test failed: {err}"
            return response
        result = detect_grasp_success(drop.before, drop.after,
                                      self.config.drop_test.detector)
        response.success = result.success
        response.changed_fraction = result.changed_fraction
        response.largest_blob_fraction = result.largest_blob_fraction
        response.ground_truth = -1 if drop.ground_truth is None else int(drop.ground_truth)
        response.before, response.after = image_to_msg(drop.before), image_to_msg(drop.after)
        response.ok = True
        return response


def main(args: list[str] | None = None) -> int:
    return spin_nodes(lambda: [SuccessNode()], threads=2, args=args)


if __name__ == "__main__":
    sys.exit(main())
