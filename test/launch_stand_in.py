"""A stand-in for ROS 2's ``launch`` and ``launch_ros`` packages, which are not on PyPI (no
wheels for the pip-installed ROS 2 these tests run on): just enough of them to execute a launch
file's ``generate_launch_description()`` and collect the ``Node`` actions it would start.

What it does as the real packages do (their code read from ros2/launch and ros2/launch_ros):

- the constructors' signatures of ``LaunchDescription``, ``DeclareLaunchArgument``,
  ``LaunchConfiguration``, ``OpaqueFunction``, ``SetEnvironmentVariable``, ``Shutdown`` and
  ``Node`` (keyword-only; a keyword neither ``Node`` nor ``ExecuteProcess`` takes is refused);
- ``DeclareLaunchArgument``: a default outside ``choices`` fails at construction, a given value
  outside them when visited, as does a required argument without a value;
- entities are visited in order, ``OpaqueFunction`` is called with the context and the actions
  it returns are visited; ``LaunchConfiguration.perform`` reads the context's values;
- ``Node``: names and namespaces are checked with rclpy's own validators; a parameter
  dictionary must hold what ``launch_ros`` can type (scalars, non-empty uniform lists, nested
  dictionaries) and is written to a YAML file keyed as launch_ros keys it (the node's full
  name when name and namespace are given, else ``/**``);
  :meth:`StandInNode.ros_arguments_for_rclpy` gives the ``--ros-args`` the node process would
  get, parameter files in order, so a test can hand them to a real rclpy node and let rcl
  resolve the parameters.

What it does not do or check: no process is started, so executables are not looked up in the
ament index (the tests check the console scripts instead); respawn, ``respawn_delay`` and
``on_exit`` are recorded but never happen; environment variables are recorded, not exported;
no event handlers, conditions, groups, includes, ``ros_namespace``/global parameters,
remappings or frontend (XML/YAML) launch files; substitutions other than
``LaunchConfiguration`` and plain text are refused; a parameter dictionary is written as given,
where launch_ros first evaluates it (coercing, e.g., a list of ints and floats to floats); an
argument a launch file does not declare is an error here, where ``ros2 launch`` would accept it
silently.
"""

from __future__ import annotations

import os
import sys
import tempfile
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rclpy.validate_namespace import validate_namespace
from rclpy.validate_node_name import validate_node_name

# ExecuteProcess / ExecuteLocal / Action keywords Node passes on (launch 3.x).
EXECUTE_PROCESS_KEYWORDS = {
    "prefix", "cwd", "env", "additional_env", "shell", "sigterm_timeout", "sigkill_timeout",
    "emulate_tty", "output", "output_format", "cached_output", "log_cmd", "on_exit", "respawn",
    "respawn_delay", "respawn_max_retries", "condition"}


class LaunchContext:
    def __init__(self, arguments: Mapping[str, str], param_dir: Path) -> None:
        self.launch_configurations = dict(arguments)
        self.environment: dict[str, str] = {}
        self.param_dir = param_dir


def _perform(value: Any, context: LaunchContext) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, LaunchConfiguration):
        return value.perform(context)
    raise TypeError(f"the stand-in performs only text and LaunchConfiguration, not {value!r}")


class LaunchConfiguration:
    def __init__(self, variable_name: str, *, default: Any = None) -> None:
        self.variable_name, self.default = variable_name, default

    def perform(self, context: LaunchContext) -> str:
        if self.variable_name in context.launch_configurations:
            return context.launch_configurations[self.variable_name]
        if self.default is None:
            raise RuntimeError(f"launch configuration '{self.variable_name}' does not exist")
        return _perform(self.default, context)


class DeclareLaunchArgument:
    def __init__(self, name: str, *, default_value: Any = None, description: str | None = None,
                 choices: list[str] | None = None, **kwargs: Any) -> None:
        if kwargs.keys() - {"condition"}:
            raise TypeError(f"DeclareLaunchArgument: unexpected {sorted(kwargs)}")
        if choices is not None:
            if len(choices) == 0:
                raise RuntimeError("Provided choices arg is empty. Use None to ignore the "
                                   "choice list.")
            if isinstance(default_value, str) and default_value not in choices:
                raise RuntimeError(f'Provided default_value "{default_value}" is not in '
                                   f'provided choices "{choices}".')
        self.name, self.default_value = name, default_value
        self.description, self.choices = description, choices

    def execute(self, context: LaunchContext) -> None:
        configurations = context.launch_configurations
        if self.name not in configurations:
            if self.default_value is None:
                raise RuntimeError(f'Required launch argument "{self.name}" was not provided.')
            configurations[self.name] = _perform(self.default_value, context)
        if self.choices is not None and configurations[self.name] not in self.choices:
            raise RuntimeError(f'Argument "{self.name}" provided value '
                               f'"{configurations[self.name]}" is not valid. Valid options '
                               f'are: {self.choices}')


class SetEnvironmentVariable:
    def __init__(self, name: Any, value: Any, **kwargs: Any) -> None:
        self.name, self.value = name, value

    def execute(self, context: LaunchContext) -> None:
        context.environment[_perform(self.name, context)] = _perform(self.value, context)


class OpaqueFunction:
    def __init__(self, *, function: Callable, args: Iterable | None = None,
                 kwargs: Mapping | None = None, **left_over: Any) -> None:
        self.function, self.args, self.kwargs = function, list(args or ()), dict(kwargs or {})

    def execute(self, context: LaunchContext) -> list:
        return list(self.function(context, *self.args, **self.kwargs) or [])


class Shutdown:
    def __init__(self, *, reason: str = "reason not given", **kwargs: Any) -> None:
        self.reason = reason

    def execute(self, context: LaunchContext) -> None:
        raise RuntimeError("the stand-in runs no processes, so nothing exits to shut down")


class LaunchDescription:
    def __init__(self, initial_entities: Iterable | None = None, *,
                 deprecated_reason: str | None = None) -> None:
        self.entities = list(initial_entities or ())


def _check_value(name: str, value: Any) -> None:
    """What launch_ros's normalize/evaluate_parameter_dict accept in a parameter dict."""
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _check_value(f"{name}.{key}", sub)
    elif isinstance(value, (list, tuple)):
        kinds = {type(v) for v in value}
        uniform = kinds in ({bool}, {int}, {float}, {int, float}, {str})
        if not value or not uniform:
            raise TypeError(f"parameter {name}: {value!r} is not a non-empty list of one type")
    elif not isinstance(value, (str, int, float, bool, bytes)):
        raise TypeError(f"parameter {name}: unexpected type {type(value).__name__}")


@dataclass
class StandInNode:
    """A launch_ros ``Node`` action as the stand-in records it."""

    executable: str
    package: str | None = None
    name: str | None = None
    namespace: str | None = None
    exec_name: str | None = None
    parameters: list | None = None
    remappings: list | None = None
    ros_arguments: list | None = None
    arguments: list | None = None
    process: dict[str, Any] = field(default_factory=dict)  # ExecuteProcess keywords
    parameter_files: list[str] = field(default_factory=list)  # set when visited

    def __post_init__(self) -> None:
        unknown = self.process.keys() - EXECUTE_PROCESS_KEYWORDS
        if unknown:
            raise TypeError(f"Node: unexpected keyword arguments {sorted(unknown)}")
        if self.name is not None:
            validate_node_name(self.name)
        if self.namespace is not None:
            validate_namespace(self.namespace if self.namespace.startswith("/")
                               else f"/{self.namespace}")
        if self.parameters is not None and not isinstance(self.parameters, list):
            raise TypeError("Node: parameters must be a list")
        for entry in self.parameters or []:
            if isinstance(entry, Mapping):
                _check_value("", entry)
            elif not isinstance(entry, (str, Path)):
                raise TypeError(f"Node: parameter entry {entry!r} is neither dict nor path")

    @property
    def respawn(self) -> bool:
        return bool(self.process.get("respawn", False))

    @property
    def full_name(self) -> str | None:
        """The node's full name where both name and namespace are given (else launch_ros
        keys dictionaries with the ``/**`` wildcard)."""
        if self.name is None or self.namespace is None:
            return None
        return f"/{self.namespace.strip('/')}/{self.name}".replace("//", "/")

    def execute(self, context: LaunchContext) -> None:
        for entry in self.parameters or []:
            if isinstance(entry, Mapping):
                fd, path = tempfile.mkstemp(prefix="launch_params_", dir=context.param_dir)
                with os.fdopen(fd, "w") as f:
                    yaml.dump({self.full_name or "/**": {"ros__parameters": dict(entry)}}, f)
                self.parameter_files.append(path)
            else:
                self.parameter_files.append(str(entry))

    def ros_arguments_for_rclpy(self) -> list[str]:
        """The ``--ros-args`` the node process gets: name, namespace and parameter files."""
        args = ["--ros-args"]
        if self.name is not None:
            args += ["-r", f"__node:={self.name}"]
        if self.namespace is not None:
            args += ["-r", f"__ns:=/{self.namespace.strip('/')}"]
        for path in self.parameter_files:
            args += ["--params-file", path]
        return args


def Node(*, executable: str, package: str | None = None, name: str | None = None,
         namespace: str | None = None, exec_name: str | None = None,
         parameters: list | None = None, remappings: list | None = None,
         ros_arguments: list | None = None, arguments: list | None = None,
         **kwargs: Any) -> StandInNode:
    return StandInNode(executable, package, name, namespace, exec_name, parameters, remappings,
                       ros_arguments, arguments, kwargs)


@dataclass
class Launched:
    """What a launch description would start: its Node actions, in order, and the
    environment it sets."""

    nodes: list[StandInNode]
    environment: dict[str, str]
    arguments: dict[str, str]  # every declared argument's value, defaults included


def install(monkeypatch: Any) -> None:
    """Make ``launch``, ``launch.actions``, ``launch.substitutions``, ``launch_ros`` and
    ``launch_ros.actions`` import as this stand-in for the rest of the test."""
    modules = {
        "launch": {"LaunchDescription": LaunchDescription, "LaunchContext": LaunchContext},
        "launch.actions": {"DeclareLaunchArgument": DeclareLaunchArgument,
                           "OpaqueFunction": OpaqueFunction,
                           "SetEnvironmentVariable": SetEnvironmentVariable,
                           "Shutdown": Shutdown},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": Node},
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name, "stand-in (test/launch_stand_in.py)")
        module.__path__ = []  # a package, so its submodules import
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys.modules["launch"], "actions", sys.modules["launch.actions"],
                        raising=False)


def run_launch_file(path: Path, arguments: Mapping[str, str], param_dir: Path) -> Launched:
    """Execute ``path``'s ``generate_launch_description()`` with ``arguments`` (as
    ``ros2 launch ... name:=value``) and visit it; the stand-in must be installed."""
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "launch_file"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    description = namespace["generate_launch_description"]()
    declared = {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    undeclared = set(arguments) - declared
    if undeclared:
        raise KeyError(f"{path.name} declares no argument {sorted(undeclared)}")
    context = LaunchContext(arguments, param_dir)
    nodes: list[StandInNode] = []

    def visit(entity: Any) -> None:
        if isinstance(entity, StandInNode):
            entity.execute(context)
            nodes.append(entity)
            return
        for action in entity.execute(context) or []:
            visit(action)

    for entity in description.entities:
        visit(entity)
    return Launched(nodes, context.environment,
                    {name: context.launch_configurations[name] for name in declared})
