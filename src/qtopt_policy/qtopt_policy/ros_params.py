"""Node parameters that mirror a component's config dataclass one-to-one (DESIGN.md rule 3)."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from rclpy.node import Node

T = TypeVar("T")


def declare_config(node: Node, config_type: type[T]) -> T:
    """Declare one ROS parameter per dataclass field (default = the field's default) and build
    the config from their values; the dataclass validates them."""
    defaults = config_type()
    values = {}
    for field in dataclasses.fields(config_type):
        default = getattr(defaults, field.name)
        values[field.name] = node.declare_parameter(field.name, default).value
    return config_type(**values)
