"""DESIGN.md rule 1: the algorithm core imports no rclpy; nodes are thin adapters."""

import pkgutil
import subprocess
import sys

import qtopt_collector
import qtopt_learner
import qtopt_policy

# Modules allowed to import rclpy: ROS adapters only (nodes, launch graph, ROS tooling).
ROS_ADAPTERS = {
    "qtopt_policy.node_main",
    "qtopt_collector.cli",
    "qtopt_collector.device_nodes",
    "qtopt_collector.hardware_backends",
    "qtopt_collector.runner",
    "qtopt_collector.service_calls",
    "qtopt_policy.transport_check",
    "qtopt_policy.qos",
    "qtopt_learner.app.cli",
    "qtopt_learner.app.main_job",  # drives the ROS 2 cell graph through the runner
    "qtopt_learner.app.training_graph",
}


def _modules() -> list[str]:
    names = []
    for pkg in (qtopt_policy, qtopt_collector, qtopt_learner):
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
            names.append(info.name)
    return names


def _imports_rclpy(modules: list[str]) -> bool:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "sys.exit(3 if 'rclpy' in sys.modules else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode == 3


def test_core_modules_import_no_rclpy():
    core = [m for m in _modules() if m not in ROS_ADAPTERS and not m.endswith("_node")]
    assert "qtopt_policy.spec" in core and "qtopt_policy.ros_env" in core
    if _imports_rclpy(core):
        offenders = [m for m in core if _imports_rclpy([m])]
        raise AssertionError(f"core modules import rclpy: {offenders}")


def test_the_check_detects_rclpy():
    assert _imports_rclpy(["qtopt_policy.transport_check"])
