"""The hardware arm backends over real ROS 2 against a fake KUKA controller process:
JointTrajectory (ros2_control) and TwistStamped (MoveIt Servo)."""

import os
import subprocess
import sys
import time

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from qtopt_msgs.srv import ArmCommand, ResetCell
from qtopt_policy.ros.transport_check import stop_process

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _start(args, log):
    return subprocess.Popen([sys.executable, *args], env=dict(os.environ), stdout=log,
                            stderr=subprocess.STDOUT)


@pytest.mark.parametrize("backend", ["trajectory", "servo"])
def test_arm_node_moves_a_fake_kuka(ros_domain, tmp_path, backend):
    log = open(tmp_path / "nodes.log", "w")
    params = ["--ros-args", "-p", f"backend:={backend}", "-p", "move_duration_s:=0.3",
              "-p", "timeout_s:=30.0"]  # room for a loaded CI machine
    procs = [_start(["-m", "qtopt_collector.fake_kuka_controller_node", *params], log),
             _start(["-m", "qtopt_collector.device_nodes", "arm", *params], log)]
    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("arm_test", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        command = node.create_client(ArmCommand, "arm/command")
        reset = node.create_client(ResetCell, "cell/reset")

        def call(client, request):
            deadline = time.monotonic() + 60
            while not client.service_is_ready():
                assert time.monotonic() < deadline, (tmp_path / "nodes.log").read_text()
                executor.spin_once(timeout_sec=0.1)
            future = client.call_async(request)
            executor.spin_until_future_complete(future, timeout_sec=60)
            return future.result()

        start = call(reset, ResetCell.Request(seed=1))
        assert start.success, start.message
        assert start.height_to_bottom == pytest.approx(0.30, abs=0.01)
        down = call(command, ArmCommand.Request(command=ArmCommand.Request.MOVE_RELATIVE,
                                                translation=[0.0, 0.0, -0.05], rotation=0.1))
        assert down.success, down.message
        assert down.height_to_bottom == pytest.approx(start.height_to_bottom - 0.05, abs=0.01)
        lower = call(command, ArmCommand.Request(command=ArmCommand.Request.MOVE_TO_HEIGHT,
                                                 height=0.12))
        assert lower.success and lower.height_to_bottom == pytest.approx(0.12, abs=0.01)
        out = call(command, ArmCommand.Request(command=ArmCommand.Request.OUT_OF_VIEW))
        assert out.success and out.height_to_bottom == pytest.approx(0.45, abs=0.01)
        too_far = call(command, ArmCommand.Request(command=ArmCommand.Request.MOVE_RELATIVE,
                                                   translation=[0.3, 0.0, 0.0]))
        assert not too_far.success and "translation" in too_far.message
    finally:
        rclpy.shutdown(context=context)
        for p in procs:
            stop_process(p)
        log.close()
