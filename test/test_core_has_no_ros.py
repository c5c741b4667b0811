"""The algorithm core imports no rclpy; nodes are thin adapters. Where a module
may import rclpy follows from where it lives: a ``*_node``/``*_nodes`` module, a ``ros``
subpackage, or the application layer ``qtopt_learner.app``. The learner core imports no
simulator and no plotting either."""

import pkgutil
import subprocess
import sys

import qtopt_collector
import qtopt_learner
import qtopt_policy

ADAPTER_PACKAGES = ("qtopt_policy.ros", "qtopt_collector.ros", "qtopt_learner.app")


def _modules(*packages) -> list[str]:
    names = []
    for pkg in packages:
        names.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
            names.append(info.name)
    return names


def is_ros_adapter(module: str) -> bool:
    leaf = module.rsplit(".", 1)[-1]
    return leaf.endswith(("_node", "_nodes")) or any(
        module == p or module.startswith(f"{p}.") for p in ADAPTER_PACKAGES)


def _imports(modules: list[str], banned: str) -> bool:
    """Whether importing ``modules`` in a fresh interpreter loads ``banned``."""
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"sys.exit(3 if {banned!r} in sys.modules else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode == 3


def _offenders(modules: list[str], banned: str) -> list[str]:
    if not _imports(modules, banned):
        return []
    return [m for m in modules if _imports([m], banned)]


def test_core_modules_import_no_rclpy():
    core = [m for m in _modules(qtopt_policy, qtopt_collector, qtopt_learner)
            if not is_ros_adapter(m)]
    assert "qtopt_policy.spec" in core and "qtopt_policy.ros_env" in core
    assert "qtopt_learner.distributed.engine" in core
    assert _offenders(core, "rclpy") == []


def test_the_learner_core_imports_no_simulator_and_no_plotting():
    core = [m for m in _modules(qtopt_learner) if not is_ros_adapter(m)]
    for banned in ("pybullet", "matplotlib"):
        assert _offenders(core, banned) == [], banned


def test_adapters_are_named_by_where_they_live():
    assert is_ros_adapter("qtopt_collector.device_nodes")
    assert is_ros_adapter("qtopt_policy.policy_node")
    assert is_ros_adapter("qtopt_learner.app.main_job")
    assert is_ros_adapter("qtopt_collector.ros.runner")
    assert not is_ros_adapter("qtopt_collector.graph")
    assert not is_ros_adapter("qtopt_learner.approximations")  # a prefix is not a package


def test_the_check_detects_rclpy():
    assert _imports(["qtopt_policy.ros.transport_check"], "rclpy")
