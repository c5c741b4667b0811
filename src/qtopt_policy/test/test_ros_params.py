"""ros_params: declared parameter defaults follow the parent's default instance, and every
parameter's descriptor (description, range, read-only) holds on a real rclpy node."""

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.ros_params import ParameterError, config_to_parameters, declare_config


class _ParameterNode:
    """Stands in for a node: overrides come from ``parameters``; ``declared`` records each
    declared name with its default."""

    def __init__(self, parameters: dict[str, Any] | None = None) -> None:
        self.parameters = parameters or {}
        self.declared: dict[str, Any] = {}

    def declare_parameter(self, name: str, default: Any, *_: Any) -> SimpleNamespace:
        self.declared[name] = default
        return SimpleNamespace(value=self.parameters.get(name, default))


@dataclass(frozen=True)
class _Inner:
    lr: float = 1e-4
    steps: int = 6000
    sizes: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class _Middle:
    inner: _Inner = field(default_factory=lambda: _Inner(lr=1e-2, steps=500))
    name: str = "middle"


@dataclass(frozen=True)
class _Parent:
    middle: _Middle = field(
        default_factory=lambda: _Middle(inner=_Inner(lr=3e-3, sizes=(7,)), name="preset"))
    inner: _Inner = field(default_factory=lambda: _Inner(steps=42))
    scale: float = 0.5


def test_nested_defaults_come_from_the_parents_default_instance():
    node = _ParameterNode()
    config = declare_config(node, _Parent)
    assert config == _Parent()
    assert node.declared == config_to_parameters(_Parent())
    assert node.declared["middle.inner.lr"] == 3e-3  # not _Middle's 1e-2 nor _Inner's 1e-4
    assert node.declared["middle.inner.sizes"] == [7]
    assert node.declared["inner.steps"] == 42


def test_prefix_applies_to_declared_names():
    node = _ParameterNode()
    assert declare_config(node, _Parent, "p.") == _Parent()
    assert node.declared == config_to_parameters(_Parent(), "p.")


def test_overriding_one_nested_field_keeps_the_other_defaults():
    node = _ParameterNode({"middle.inner.steps": 9, "inner.sizes": [3, 4]})
    config = declare_config(node, _Parent)
    default = _Parent()
    assert config.middle.inner == _Inner(lr=3e-3, steps=9, sizes=(7,))
    assert config.middle.name == "preset"
    assert config.inner == _Inner(steps=42, sizes=(3, 4))
    assert config.scale == default.scale


@dataclass(frozen=True)
class _Limits:
    count: int = bounded(3, ge=1, le=10)  # items per batch
    rate: float = bounded(0.5, gt=0, lt=1)  # share of the items kept
    # Where the node writes: a comment block above a field
    # runs on into one description.
    out_dir: str = "out"
    paths: tuple[str, ...] = ()  # inputs
    inner: _Inner = field(default_factory=_Inner)  # _Inner's fields have no comments

    def __post_init__(self) -> None:
        check_bounds(self)


@pytest.fixture
def make_node(ros_domain):
    """Real rclpy nodes in a context of their own, optionally with parameter overrides."""
    context = Context()
    rclpy.init(context=context)
    nodes = []

    def make(**overrides: Any):
        node = rclpy.create_node(f"params_{len(nodes)}", context=context, parameter_overrides=[
            Parameter(name, value=value) for name, value in overrides.items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown(context=context)


def _set(node, name: str, value: Any):
    return node.set_parameters([Parameter(name, value=value)])[0]


@pytest.mark.ros
def test_descriptors_carry_the_field_comments_and_bounds(make_node):
    node = make_node()
    assert declare_config(node, _Limits) == _Limits()
    count, rate, out_dir, paths, lr = (node.describe_parameter(n) for n in (
        "count", "rate", "out_dir", "paths", "inner.lr"))
    assert count.description == "items per batch"
    assert (count.integer_range[0].from_value, count.integer_range[0].to_value) == (1, 10)
    assert count.additional_constraints == "in [1, 10]"
    # ROS ranges are inclusive: the open limits stay in the text, and the config enforces them
    assert (rate.floating_point_range[0].from_value, rate.floating_point_range[0].to_value) == (
        0.0, 1.0)
    assert rate.additional_constraints == "in (0, 1)"
    assert out_dir.description == ("Where the node writes: a comment block above a field runs "
                                   "on into one description.")
    assert paths.description == "inputs" and not paths.integer_range
    assert lr.description == "_Inner.lr (float)"  # no comment: the field's class, name, type


@pytest.mark.ros
def test_parameters_read_once_are_read_only(make_node):
    node = make_node(count=4)
    assert declare_config(node, _Limits).count == 4  # overrides still apply at declaration
    for name, value in (("count", 5), ("rate", 0.25), ("out_dir", "x"), ("inner.steps", 1)):
        assert node.describe_parameter(name).read_only
        result = _set(node, name, value)
        assert not result.successful and "read-only" in result.reason, name
    assert node.get_parameter("count").value == 4


@pytest.mark.ros
def test_an_out_of_range_override_is_refused_in_one_line(make_node):
    # rclpy refuses it by the descriptor's range; the error speaks like the configs'
    with pytest.raises(ParameterError, match=r"^parameter count 0: expected an integer in "
                       r"\[1, 10\]$"):
        declare_config(make_node(count=0), _Limits)
