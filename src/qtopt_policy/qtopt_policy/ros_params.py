"""Node parameters that mirror a component's config dataclass one-to-one (docs/architecture.md,
"Conventions").

Scalar fields become parameters of the same name, tuples become arrays, and nested config
dataclasses become dotted names (``bounds.max_translation_xy``). Each parameter's descriptor
comes from its field (:mod:`qtopt_policy.config_fields`): the field's comments as description,
its bounds as a range that rclpy itself enforces, and read-only.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from qtopt_policy.config_fields import (
    Bounds,
    describe_values,
    field_bounds,
    field_description,
)

if TYPE_CHECKING:  # only for the annotations: this module imports no rclpy
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.node import Node

T = TypeVar("T")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ParameterError(ValueError):
    """A node parameter that does not fit its field: one line naming the parameter, its value
    and what was expected. ``spin_nodes`` prints it and exits with status 2."""


def declare_config(node: Node, config_type: type[T], prefix: str = "") -> T:
    """Declare one ROS parameter per field and build the config from their values; the
    dataclass validates them.

    Defaults come from one default instance, ``config_type()``, walked recursively, so a
    nested config's defaults are the parent's (its ``default_factory``), not the nested
    type's own; they equal ``config_to_parameters(config_type(), prefix)``.

    Nodes build their config once, so every parameter is read-only (``ros2 param set`` fails
    rather than report a change that nothing sees).

    A value of the wrong type or outside the field's range (rclpy refuses it) or one the config
    refuses raises :class:`ParameterError`.
    """
    return _declare(node, config_type(), prefix)


def _declare(node: Node, defaults: T, prefix: str) -> T:
    """Declare the fields of ``defaults`` (an instance) with its values as defaults and
    build an instance of its type from the declared values."""
    # imported here: config_to_parameters, the rest of this module, runs without ROS
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.parameter import Parameter

    values: dict[str, Any] = {}
    for field in dataclasses.fields(defaults):
        default = getattr(defaults, field.name)
        name = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(default):
            values[field.name] = _declare(node, default, f"{name}.")
            continue
        descriptor = _descriptor(type(defaults), field, default)
        try:
            if isinstance(default, tuple) and not default:
                # an empty list has no type for ROS; these are lists of strings (paths, topics)
                value = node.declare_parameter(name, Parameter.Type.STRING_ARRAY,
                                               descriptor).value
                values[field.name] = tuple(value or ())
            elif isinstance(default, tuple):
                values[field.name] = tuple(
                    node.declare_parameter(name, list(default), descriptor).value)
            else:
                values[field.name] = node.declare_parameter(name, default, descriptor).value
        except (InvalidParameterTypeException, InvalidParameterValueException):
            raise _refused(node, name, field, default) from None
    try:
        return type(defaults)(**values)
    except ValueError as err:  # config messages start with the field's name
        raise ParameterError(f"parameter {prefix}{err}") from None


def _refused(node: Node, name: str, field: dataclasses.Field, default: Any) -> ParameterError:
    """The error for an override rclpy refused (wrong type, out of range), in the configs'
    words: ``parameter seed -1: expected an integer >= 0``."""
    # rclpy's exceptions hold the value only inside their text: take it from the override
    override = getattr(node, "_parameter_overrides", {}).get(name)
    value = "(given)" if override is None else repr(override.value)
    nouns = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if isinstance(default, tuple):
        expected = f"a list of {nouns.get(type(default[0]), 'value') if default else 'string'}s"
    elif type(default) in (int, float):
        expected = describe_values(type(default), field_bounds(field))
    else:
        expected = {bool: "true or false", str: "a string"}.get(type(default), "a value")
    return ParameterError(f"parameter {name} {value}: expected {expected}")


def _descriptor(config_type: type, field: dataclasses.Field, default: Any
                ) -> ParameterDescriptor:
    """Description and range of one field's (read-only) parameter."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    descriptor = ParameterDescriptor(description=field_description(config_type, field),
                                     read_only=True)
    bounds = field_bounds(field)
    if bounds is None or isinstance(default, bool):
        return descriptor
    # a ROS range is inclusive: the text keeps an open limit ("> 0") that the config enforces
    descriptor.additional_constraints = bounds.describe()
    if isinstance(default, int):
        low, high = _int_limits(bounds)
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    elif isinstance(default, float):
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=-sys.float_info.max if bounds.low is None else float(bounds.low),
            to_value=sys.float_info.max if bounds.high is None else float(bounds.high),
            step=0.0)]
    return descriptor


def _int_limits(bounds: Bounds) -> tuple[int, int]:
    """``bounds`` as the inclusive int64 range ROS holds."""
    low, high = INT64_MIN, INT64_MAX
    if bounds.low is not None:
        low = math.floor(bounds.low) + 1 if bounds.low_open else math.ceil(bounds.low)
    if bounds.high is not None:
        high = math.ceil(bounds.high) - 1 if bounds.high_open else math.floor(bounds.high)
    return low, high


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
