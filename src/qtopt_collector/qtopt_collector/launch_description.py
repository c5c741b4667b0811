"""A node graph (``graph.NodeSpec`` list) as a ``launch`` description, for the launch files.

``launch`` and ``launch_ros`` exist only on a real ROS 2 install (not on PyPI), so they are
imported when a launch file asks for its description. Every graph gets three arguments besides
its own: ``params_file``, a standard ROS 2 parameter file (``/**:`` / ``/**/arm:`` ...
``ros__parameters:``) given to every node after the graph's parameters, so the file's values
win (the cell geometry a user measured, say); ``respawn``, whether nodes that may be restarted
(``NodeSpec.respawn``) are; ``discovery_range``: LOCALHOST (the default) keeps DDS on this
machine with the loopback Fast DDS profile, SUBNET is for robot drivers on another computer.
Graphs with cells also take the episode driver's arguments (:data:`DRIVER_ARGUMENTS`). Integer
arguments are read with :func:`integer_argument`, which names a bad one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from qtopt_collector.episode_driver import EpisodeDriverConfig
from qtopt_collector.graph import NodeSpec, cell_namespace
from qtopt_policy.config_fields import numeric_field, parse_value
from qtopt_policy.model_file import ModelFileInfo, read_model_info
from qtopt_policy.names import SEEDS_PER_RUN
from qtopt_policy.ros_env import fastdds_profile_path
from qtopt_policy.ros_params import config_to_parameters, declare_config

if TYPE_CHECKING:  # the sim cell's package imports pybullet, which a real cell's launch lacks
    from qtopt_collector.sim_cell import SimCellConfig

T = TypeVar("T")
BOOLEAN = ("true", "false")
RESPAWN_DELAY_S = 2.0  # a node that fails on start is not restarted in a tight loop


@dataclass(frozen=True)
class Argument:
    """A launch argument: default, description and, for an enumerated one, its choices (a
    value outside them is refused before any node starts)."""

    default: str
    description: str
    choices: tuple[str, ...] | None = None


COMMON_ARGUMENTS = {
    "params_file": Argument(
        "", "ROS 2 parameter file for every node, applied after the graph's parameters (its "
        "values win), e.g. share/qtopt_collector/config/real_cell.yaml; '' for none"),
    "respawn": Argument("true", "restart a node that dies (not the episode driver)", BOOLEAN),
    "discovery_range": Argument(
        "LOCALHOST", "ROS_AUTOMATIC_DISCOVERY_RANGE for the launched nodes: LOCALHOST keeps DDS "
        "on this machine, SUBNET reaches robot drivers on another computer",
        ("LOCALHOST", "SUBNET", "SYSTEM_DEFAULT", "OFF")),
}
DRIVER_ARGUMENTS = {
    "driver": Argument("true", "start the episode driver, which sends the cells their "
                       "RunEpisode goals (false: send them yourself)", BOOLEAN),
    "episodes": Argument("0", "episodes the driver collects across the cells, then the launch "
                         "ends; 0: until Ctrl-C"),
    "seed": Argument("0", f"the run's seed: its episodes take seeds seed * {SEEDS_PER_RUN} + 1, "
                     "+ 2, ... (give every launch into the same out_dir its own seed)"),
}


def integer_argument(values: Mapping[str, str], name: str, config_type: type) -> int:
    """The launch argument ``name`` as the integer field of the same name of ``config_type``
    takes it; ValueError ``cells 'two': expected an integer >= 1`` otherwise."""
    kind, bounds = numeric_field(config_type, name)
    try:
        return parse_value(values[name], kind, bounds)
    except ValueError as err:
        raise ValueError(f"{name} {values[name]!r}: {err}") from None


def driver_config(values: Mapping[str, str]) -> EpisodeDriverConfig | None:
    """The episode driver the :data:`DRIVER_ARGUMENTS` ask for (None: no driver)."""
    if values["driver"] != "true":
        return None
    return EpisodeDriverConfig(episodes=integer_argument(values, "episodes", EpisodeDriverConfig),
                               seed=integer_argument(values, "seed", EpisodeDriverConfig))


def params_file(values: Mapping[str, str]) -> Path | None:
    """The ``params_file`` argument as an absolute path, None for none. A missing file fails
    here: launch_ros would only warn and start the nodes without it."""
    if not values["params_file"]:
        return None
    path = Path(values["params_file"]).expanduser().absolute()
    if not path.is_file():
        raise FileNotFoundError(f"params_file {values['params_file']}: no such file")
    return path


Sections = list[tuple[str, dict[str, Any]]]  # (node name pattern, parameters), in order


def _sections(tree: Mapping[str, Any], prefix: str = "") -> Sections:
    """The ``ros__parameters`` sections of a parameter file, in file order; nested keys above
    ``ros__parameters`` are namespaces, as rcl reads them."""
    out: Sections = []
    for key, value in tree.items():
        name = f"{prefix}/{str(key).strip('/')}"
        if not isinstance(value, dict):
            raise ValueError(f"parameter file: {name} holds no ros__parameters")
        if "ros__parameters" in value:
            out.append((name, value["ros__parameters"] or {}))
        else:
            out += _sections(value, name)
    return out


def file_sections(path: Path | str) -> Sections:
    """The sections of the ROS 2 parameter file at ``path``."""
    return _sections(yaml.safe_load(Path(path).read_text()) or {})


def _flatten(parameters: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameter dictionaries as dotted names (``geometry.floor_z``)."""
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _matches(pattern: str, node: str) -> bool:
    """rcl's node name wildcards: ``/**`` any number of tokens, ``/*`` one token."""
    tokens = [t for t in pattern.split("/") if t]
    regex = "".join("(/[^/]+)*" if t == "**" else "/[^/]+" if t == "*" else "/" + re.escape(t)
                    for t in tokens)
    return re.fullmatch(regex, node) is not None


def node_parameters(node: str, *sources: Sections) -> dict[str, Any]:
    """The parameters rclpy gives the node with fully qualified name ``node`` (``/cell0/sim``)
    from parameter files in command-line order, as flat dotted names. rclpy merges the
    sections of all files by name and applies those that match in the order a name first
    appeared: a later file's values for a name an earlier file used take that earlier place,
    so a specific section does not necessarily beat a wildcard one (measured with rclpy,
    Kilted; test/test_launch_files.py compares this with rclpy)."""
    merged: dict[str, dict[str, Any]] = {}
    for sections in sources:
        for pattern, parameters in sections:
            merged.setdefault("/" + pattern.strip("/"), {}).update(_flatten(parameters))
    values: dict[str, Any] = {}
    for pattern, parameters in merged.items():
        if _matches(pattern, node):
            values.update(parameters)
    return values


class _Values:
    """Stands in for a node in ``declare_config``: a parameter's value is the given one, else
    the declared default."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def declare_parameter(self, name: str, value: Any = None, *_: Any) -> SimpleNamespace:
        return SimpleNamespace(value=self.values.get(name, value))


def config_with_file(config: T, path: Path | None, node: str, key: str = "/**") -> T:
    """What the node with fully qualified name ``node`` reads as its config when the graph
    gives it ``config`` (as a launch_ros parameter dictionary, keyed ``key``: ``/**`` for a
    Node action without a name) and the parameter file at ``path`` follows; read as the node
    reads it (``declare_config``, which validates)."""
    if path is None:
        return config
    values = node_parameters(node, [(key, config_to_parameters(config))], file_sections(path))
    return declare_config(_Values(values), type(config))


def model_info(arg: Mapping[str, str]) -> ModelFileInfo | None:
    """The checked model file the ``model_path`` argument names; None for none. Read once:
    the cells' camera and the rule their episodes end by both come from it."""
    return read_model_info(arg["model_path"]) if arg["model_path"] else None


def sim_config_with_file(config: SimCellConfig, model: ModelFileInfo | None, path: Path | None,
                         cells: int) -> SimCellConfig:
    """The simulated cells' config: ``config`` rendering the camera ``model`` was trained with
    (:meth:`SimCellConfig.for_model`; None: no model), then what the parameter file gives
    their ``sim`` nodes (sim_cell_node, a Node action without a name). The graph derives the
    camera every bag records and the success node's label from it, and runs one config in
    every cell, so the file must give all cells the same; and it must leave a model's camera
    alone (the model sees only that view), so a file that changes it is refused."""
    trained = config.for_model(model) if model else config
    configs = [config_with_file(trained, path, f"/{cell_namespace(i)}/sim")
               for i in range(max(cells, 1))]
    if any(c != configs[0] for c in configs):
        raise ValueError("params_file gives the simulated cells different sim parameters; the "
                         "graph runs one sim config in every cell")
    if model and configs[0].camera() != trained.camera():
        raise ValueError(
            f"params_file {path}: sets the simulated cells' camera to "
            f"{configs[0].camera().describe()}, but the cells render the camera model_path "
            f"{model.path} was trained with ({trained.camera().describe()}); expected a file "
            "without camera_* parameters")
    return configs[0]


def graph_launch_description(arguments: Mapping[str, Argument],
                             specs: Callable[[dict[str, str]], list[NodeSpec]]):
    """Declare ``arguments`` and :data:`COMMON_ARGUMENTS`, and launch ``specs(values)``."""
    from launch.actions import (
        DeclareLaunchArgument,
        OpaqueFunction,
        SetEnvironmentVariable,
        Shutdown,
    )
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from launch import LaunchDescription

    arguments = {**arguments, **COMMON_ARGUMENTS}

    def nodes(context):
        values = {name: LaunchConfiguration(name).perform(context) for name in arguments}
        path = params_file(values)
        respawn = values["respawn"] == "true"
        actions = []
        if values["discovery_range"] == "LOCALHOST":
            actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                                  str(fastdds_profile_path())))
        for s in specs(values):
            actions.append(Node(
                package=s.package, executable=s.executable, namespace=s.namespace or None,
                name=s.name or None,
                # later sources win in rclpy: the file over the graph's values
                parameters=[s.parameters] + ([str(path)] if path else []),
                output="screen", respawn=respawn and s.respawn, respawn_delay=RESPAWN_DELAY_S,
                on_exit=[Shutdown(reason=f"{s.executable} finished")] if s.required else None))
        return actions

    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=a.default, description=a.description,
                               choices=list(a.choices) if a.choices else None)
         for name, a in arguments.items()]
        + [SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE",
                                  LaunchConfiguration("discovery_range")),
           OpaqueFunction(function=nodes)]
    )
