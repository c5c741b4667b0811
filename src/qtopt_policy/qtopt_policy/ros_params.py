"""Node parameters that mirror a component's config dataclass one-to-one (docs/architecture.md,
"Conventions").

Scalar fields become parameters of the same name, tuples become arrays, and nested config
dataclasses become dotted names (``bounds.max_translation_xy``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # only for the annotation: this module imports no rclpy
    from rclpy.node import Node

T = TypeVar("T")


def declare_config(node: Node, config_type: type[T], prefix: str = "") -> T:
    """Declare one ROS parameter per field and build the config from their values; the
    dataclass validates them.

    Defaults come from one default instance, ``config_type()``, walked recursively, so a
    nested config's defaults are the parent's (its ``default_factory``), not the nested
    type's own; they equal ``config_to_parameters(config_type(), prefix)``.
    """
    return _declare(node, config_type(), prefix)


def _declare(node: Node, defaults: T, prefix: str) -> T:
    """Declare the fields of ``defaults`` (an instance) with its values as defaults and
    build an instance of its type from the declared values."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(defaults):
        default = getattr(defaults, field.name)
        name = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(default):
            values[field.name] = _declare(node, default, f"{name}.")
        elif isinstance(default, tuple) and not default:
            # an empty list has no type for ROS; these are lists of strings (paths, topics)
            from rclpy.parameter import Parameter  # only reached with a node, i.e. with rclpy

            value = node.declare_parameter(name, Parameter.Type.STRING_ARRAY).value
            values[field.name] = tuple(value or ())
        elif isinstance(default, tuple):
            values[field.name] = tuple(node.declare_parameter(name, list(default)).value)
        else:
            values[field.name] = node.declare_parameter(name, default).value
    return type(defaults)(**values)


def config_to_parameters(config: Any, prefix: str = "") -> dict[str, Any]:
    """The inverse: flat ``{parameter name: value}`` for launch files and the runner."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            out.update(config_to_parameters(value, f"{prefix}{field.name}."))
        else:
            out[f"{prefix}{field.name}"] = list(value) if isinstance(value, tuple) else value
    return out
