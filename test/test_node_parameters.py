"""Every node's parameters carry descriptors: the config field's comment as description,
read-only (nodes read their config once, so ``ros2 param set`` must fail rather than report a
change nothing sees), and the field's bounds as a range rclpy enforces."""

import ast
import dataclasses
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

import qtopt_collector
import qtopt_learner
import qtopt_policy
from qtopt_policy.config_fields import field_bounds, field_comments, field_description
from qtopt_policy.ros_params import ParameterError, config_to_parameters, declare_config

pytestmark = pytest.mark.ros


def _declared_types(module: str) -> list[str]:
    """Names of the config types ``module``'s source passes to ``declare_config``."""
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    calls = [c for c in ast.walk(tree)
             if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "declare_config"]
    for call in calls:
        assert isinstance(call.args[1], ast.Name), f"{module}: {ast.unparse(call)}"
    return [call.args[1].id for call in calls]


def node_configs() -> dict[str, type]:
    """``{"module:Config": Config}`` for every ``declare_config(node, Config)`` in a node
    module, found in the source so that a new node is checked without being listed here."""
    found: dict[str, type] = {}
    for package in (qtopt_policy, qtopt_collector, qtopt_learner):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name.endswith(("_node", "_nodes")):
                for name in _declared_types(info.name):
                    found[f"{info.name}:{name}"] = getattr(importlib.import_module(info.name),
                                                           name)
    return found


NODE_CONFIGS = node_configs()


def _leaves(config, prefix=""):
    """(parameter name, owning config type, field) of every parameter ``config`` declares."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", type(config), f


@pytest.fixture
def context(ros_domain):
    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def test_the_node_modules_are_found():
    assert {"qtopt_policy.policy_node:PolicyServerConfig",
            "qtopt_collector.episode_runner_node:EpisodeRunnerConfig",
            "qtopt_collector.device_nodes:TopicCameraConfig",
            "qtopt_learner.learner_node:LearnerNodeConfig"} <= NODE_CONFIGS.keys()


def test_every_node_config_field_has_a_comment_to_describe_it():
    uncommented = sorted({f"{owner.__name__}.{f.name}" for config in NODE_CONFIGS.values()
                          for _, owner, f in _leaves(config())
                          if f.name not in field_comments(owner)})
    assert uncommented == [], "comment these fields: they become the parameters' descriptions"


@pytest.mark.parametrize("key", sorted(NODE_CONFIGS))
def test_every_parameter_is_described_read_only_and_bounded(context, key):
    config_type = NODE_CONFIGS[key]
    node = rclpy.create_node("described", context=context)
    try:
        assert declare_config(node, config_type) == config_type()
        defaults = config_to_parameters(config_type())
        ranges = 0
        for name, owner, f in _leaves(config_type()):
            descriptor = node.describe_parameter(name)
            assert descriptor.description == field_description(owner, f) != "", name
            assert descriptor.read_only, name
            ranged = bool(descriptor.integer_range or descriptor.floating_point_range)
            assert ranged == (field_bounds(f) is not None), name
            ranges += ranged
            value = ["x"] if defaults[name] == [] else defaults[name]  # [] has no ROS type
            result = node.set_parameters([Parameter(name, value=value)])
            assert not result[0].successful, f"{name}: ros2 param set would report success"
        # a config with numbers and no bounds at all was never given its ranges
        numeric = [n for n, v in defaults.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        assert ranges or not numeric, f"{key}: no bounded field among {numeric}"
    finally:
        node.destroy_node()


def test_rclpy_refuses_an_out_of_range_override_before_the_config_sees_it(context):
    config_type = NODE_CONFIGS["qtopt_collector.episode_runner_node:EpisodeRunnerConfig"]
    node = rclpy.create_node("out_of_range", context=context, parameter_overrides=[
        Parameter("episode.max_steps", value=0)])
    try:
        # rclpy's refusal, reworded as one line like the configs' own errors
        with pytest.raises(ParameterError, match=r"^parameter episode.max_steps 0: expected an "
                           r"integer in \[1, 1000\]$"):
            declare_config(node, config_type)
    finally:
        node.destroy_node()
