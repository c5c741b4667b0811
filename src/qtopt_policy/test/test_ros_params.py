"""ros_params: declared parameter defaults follow the parent's default instance."""

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from qtopt_policy.ros_params import config_to_parameters, declare_config


class _ParameterNode:
    """Stands in for a node: overrides come from ``parameters``; ``declared`` records each
    declared name with its default."""

    def __init__(self, parameters: dict[str, Any] | None = None) -> None:
        self.parameters = parameters or {}
        self.declared: dict[str, Any] = {}

    def declare_parameter(self, name: str, default: Any) -> SimpleNamespace:
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
