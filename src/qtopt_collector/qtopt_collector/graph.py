"""The cell graph as data (docs/architecture.md, "Conventions").

Which nodes a simulated fleet or a real cell runs, with their parameters and namespaces, is
described here once. ``ros2 launch qtopt_collector cell.launch.py`` turns it into ``launch_ros``
Node actions on a real ROS 2 install (:mod:`qtopt_collector.launch_description`);
:mod:`qtopt_collector.ros.runner` starts the same processes on machines without ``ros2 launch``.
Who sends the cells their ``RunEpisode`` goals is part of the description: the episode driver
node (``driver``, what the launch files start) or the project's runner itself (no driver).

Each :class:`NodeSpec` also declares the topics, services and actions its process creates
(:class:`Interfaces`), named by the constants the node modules use
(:mod:`qtopt_policy.ros_names`), so the description can be checked for consistency, compared
with a live graph and drawn (``scripts/draw_architecture.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from sensor_msgs.msg import Image
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool, Trigger

from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.episode_driver import EpisodeDriverConfig
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_msgs.action import RunEpisode
from qtopt_msgs.msg import Episode, ModelUpdate
from qtopt_msgs.srv import ArmCommand, CaptureImage, DetectGraspSuccess, ResetCell, SelectAction
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.names import DEFAULT_TERMINATION, LOCAL_POLICIES, SERVED_POLICIES
from qtopt_policy.ros_names import (
    ARM_COMMAND_SERVICE,
    CAMERA_CAPTURE_SERVICE,
    CAMERA_IMAGE_TOPIC,
    EPISODES_TOPIC,
    GRIPPER_CLOSED_TOPIC,
    GRIPPER_COMMAND_SERVICE,
    HELD_OBJECT_SERVICE,
    MODEL_UPDATES_TOPIC,
    RECORDED_TOPIC,
    RESET_CELL_SERVICE,
    RUN_EPISODE_ACTION,
    SELECT_ACTION_SERVICE,
    SUCCESS_DETECT_SERVICE,
)
from qtopt_policy.ros_params import config_to_parameters


def ros_type(interface: type) -> str:
    """The ROS type name of a generated message, service or action class, as the ROS graph
    reports it, e.g. ``qtopt_msgs/msg/Episode``."""
    package, kind = interface.__module__.split(".")[:2]
    return f"{package}/{kind}/{interface.__name__}"


@dataclass(frozen=True)
class Endpoint:
    """One topic, service or action: its name (relative to the node's namespace unless it
    starts with "/") and its ROS type."""

    name: str
    type: str

    @classmethod
    def of(cls, name: str, interface: type) -> Endpoint:
        return cls(name, ros_type(interface))

    def resolve(self, namespace: str) -> str:
        """The absolute name in ``namespace`` (the suite uses no private "~" names)."""
        if self.name.startswith("/"):
            return self.name
        return f"/{namespace}/{self.name}" if namespace else f"/{self.name}"


# Role (an Interfaces field) -> kind of graph entity.
KIND_OF_ROLE = {"publishes": "topic", "subscribes": "topic", "services": "service",
                "clients": "service", "actions_served": "action", "action_clients": "action"}
# Consuming role -> the role that provides it.
PROVIDER_OF_ROLE = {"subscribes": "publishes", "clients": "services",
                    "action_clients": "actions_served"}


@dataclass(frozen=True)
class Interfaces:
    """What the nodes of one process create on the ROS graph."""

    publishes: tuple[Endpoint, ...] = ()
    subscribes: tuple[Endpoint, ...] = ()
    services: tuple[Endpoint, ...] = ()  # served
    clients: tuple[Endpoint, ...] = ()  # services called
    actions_served: tuple[Endpoint, ...] = ()
    action_clients: tuple[Endpoint, ...] = ()

    def __add__(self, other: Interfaces) -> Interfaces:
        """Both, for a process that holds several nodes (sim_cell_node)."""
        return Interfaces(**{
            f.name: tuple(dict.fromkeys(getattr(self, f.name) + getattr(other, f.name)))
            for f in fields(self)})

    def items(self) -> Iterator[tuple[str, Endpoint]]:
        """(role, endpoint) for every declared endpoint; the roles are the field names."""
        for f in fields(self):
            for endpoint in getattr(self, f.name):
                yield f.name, endpoint


@dataclass(frozen=True)
class NodeSpec:
    package: str
    executable: str  # console script, as `ros2 run <package> <executable>`
    module: str  # Python module whose main() it runs
    namespace: str = ""
    name: str = ""  # node name override; "" for processes that hold several nodes
    parameters: dict[str, Any] = field(default_factory=dict)
    interfaces: Interfaces = field(default_factory=Interfaces)
    # Safe to start again whenever it exits, losing at most the episode in flight; the launch
    # files respawn these (the runner restarts every process it starts, up to MAX_RESTARTS).
    respawn: bool = True
    # Its exit ends the graph: the episode driver once its episodes are collected.
    required: bool = False


def declared_names(specs: Iterable[NodeSpec]) -> dict[tuple[str, str], set[str]]:
    """(kind, absolute name) -> ROS types for every endpoint ``specs`` declare, kind "topic",
    "service" or "action": what a running graph of them shows."""
    names: dict[tuple[str, str], set[str]] = {}
    for spec in specs:
        for role, endpoint in spec.interfaces.items():
            key = (KIND_OF_ROLE[role], endpoint.resolve(spec.namespace))
            names.setdefault(key, set()).add(endpoint.type)
    return names


def missing_providers(specs: list[NodeSpec], namespace: str | None = None) -> list[str]:
    """Subscribed topics, called services and actions of the nodes (those in ``namespace``
    where given) that no node in ``specs`` publishes or serves with the same type; empty where
    the description is consistent."""
    provided: dict[tuple[str, str], set[str]] = {}
    for spec in specs:
        for role, endpoint in spec.interfaces.items():
            provided.setdefault((role, endpoint.resolve(spec.namespace)), set()).add(
                endpoint.type)
    missing = []
    for spec in specs:
        if namespace is not None and spec.namespace != namespace:
            continue
        for role, endpoint in spec.interfaces.items():
            if role not in PROVIDER_OF_ROLE:
                continue
            name = endpoint.resolve(spec.namespace)
            types = provided.get((PROVIDER_OF_ROLE[role], name), set())
            if endpoint.type not in types:
                found = f"provided as {sorted(types)}" if types else "no provider"
                missing.append(f"{spec.executable} in /{spec.namespace}: {KIND_OF_ROLE[role]} "
                               f"{name} [{endpoint.type}]: {found}")
    return missing


# The node classes' interfaces, shared by the sim and the real cell.
_CAMERA = Interfaces(publishes=(Endpoint.of(CAMERA_IMAGE_TOPIC, Image),),
                     services=(Endpoint.of(CAMERA_CAPTURE_SERVICE, CaptureImage),))
_ARM = Interfaces(services=(Endpoint.of(ARM_COMMAND_SERVICE, ArmCommand),
                            Endpoint.of(RESET_CELL_SERVICE, ResetCell)))
_GRIPPER = Interfaces(publishes=(Endpoint.of(GRIPPER_CLOSED_TOPIC, Bool),),
                      services=(Endpoint.of(GRIPPER_COMMAND_SERVICE, SetBool),))
_SIM = Interfaces(services=(Endpoint.of(HELD_OBJECT_SERVICE, Trigger),))


def _success_interfaces(ground_truth_service: str) -> Interfaces:
    """The drop test drives the cell's arm, camera and gripper; the simulator gives the truth."""
    truth = (Endpoint.of(ground_truth_service, Trigger),) if ground_truth_service else ()
    return Interfaces(
        services=(Endpoint.of(SUCCESS_DETECT_SERVICE, DetectGraspSuccess),),
        clients=(Endpoint.of(ARM_COMMAND_SERVICE, ArmCommand),
                 Endpoint.of(CAMERA_CAPTURE_SERVICE, CaptureImage),
                 Endpoint.of(GRIPPER_COMMAND_SERVICE, SetBool), *truth))


DRIVER_EXECUTABLE = "episode_driver_node"


def main_job_episode() -> EpisodeConfig:
    """The graphs' default loop: episodes end by the main job's rule
    (names.DEFAULT_TERMINATION), which a model's recorded rule replaces."""
    return EpisodeConfig.ending_by(DEFAULT_TERMINATION)


@dataclass(frozen=True)
class CellGraphConfig:
    cells: int = bounded(1, ge=1)  # simulated cells
    policy: str = "scripted"
    out_dir: str = "data"
    # Every runner's loop, App. C's termination and step-penalty ablations among its fields
    episode: EpisodeConfig = field(default_factory=main_job_episode)
    model_path: str = ""  # TorchScript model for greedy/noisy
    # seconds the cells' nodes wait for a service (episode runner, success detector)
    timeout_s: float = bounded(60.0, gt=0)
    sim: SimCellConfig = field(default_factory=SimCellConfig)
    # An episode driver node that sends the cells their goals (what the launch files start);
    # None where the project's runner sends them (qtopt cell, qtopt run). Its actions are the
    # cells'.
    driver: EpisodeDriverConfig | None = None

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.policy not in LOCAL_POLICIES + SERVED_POLICIES:
            raise ValueError(
                f"policy {self.policy!r}: expected one of {LOCAL_POLICIES + SERVED_POLICIES}"
            )
        if self.policy in SERVED_POLICIES and not self.model_path:
            raise ValueError(f"policy {self.policy!r} needs a model_path (TorchScript file)")


def cell_namespace(index: int) -> str:
    return f"cell{index}"


def _episode_nodes(ns: str, policy: str, out_dir: str, timeout_s: float,
                   episode: EpisodeConfig | None = None,
                   provenance: dict[str, str] | None = None) -> list[NodeSpec]:
    """The episode runner and recorder every cell runs, sim or real; ``episode`` configures the
    runner's loop (its defaults where None), ``provenance`` (camera, label source) goes into
    every bag the recorder writes."""
    runner: dict[str, Any] = {"cell_id": ns, "policy": policy, "timeout_s": timeout_s}
    if episode is not None:
        runner.update(config_to_parameters(episode, "episode."))
    # The runner calls the fleet's policy node (absolute name) only for a served policy.
    served = ((Endpoint.of(f"/{SELECT_ACTION_SERVICE}", SelectAction),)
              if policy in SERVED_POLICIES else ())
    runner_interfaces = Interfaces(
        publishes=(Endpoint.of(EPISODES_TOPIC, Episode),),
        subscribes=(Endpoint.of(RECORDED_TOPIC, String),),
        clients=(Endpoint.of(RESET_CELL_SERVICE, ResetCell),
                 Endpoint.of(CAMERA_CAPTURE_SERVICE, CaptureImage),
                 Endpoint.of(ARM_COMMAND_SERVICE, ArmCommand),
                 Endpoint.of(GRIPPER_COMMAND_SERVICE, SetBool),
                 Endpoint.of(SUCCESS_DETECT_SERVICE, DetectGraspSuccess), *served),
        actions_served=(Endpoint.of(RUN_EPISODE_ACTION, RunEpisode),))
    return [
        NodeSpec("qtopt_collector", "episode_runner_node", "qtopt_collector.episode_runner_node",
                 ns, "episode_runner", runner, runner_interfaces),
        NodeSpec("qtopt_collector", "recorder_node", "qtopt_collector.recorder_node", ns,
                 "recorder", {"out_dir": out_dir, "cell_id": ns, **(provenance or {})},
                 Interfaces(publishes=(Endpoint.of(RECORDED_TOPIC, String),),
                            subscribes=(Endpoint.of(EPISODES_TOPIC, Episode),))),
    ]


def _driver_node(driver: EpisodeDriverConfig | None, cells: list[str],
                 namespace: str = "") -> list[NodeSpec]:
    """The episode driver for ``cells`` (namespaces), when the graph has one."""
    if driver is None:
        return []
    actions = tuple(f"/{ns}/{RUN_EPISODE_ACTION}" for ns in cells)
    config = dataclasses.replace(driver, actions=actions)
    # Never respawned: a new driver would start its count again; its exit ends the graph.
    return [NodeSpec("qtopt_collector", DRIVER_EXECUTABLE, "qtopt_collector.episode_driver_node",
                     namespace, "episode_driver", config_to_parameters(config),
                     Interfaces(action_clients=tuple(Endpoint.of(a, RunEpisode)
                                                     for a in actions)),
                     respawn=False, required=True)]


def _policy_node(policy: str, model_path: str) -> list[NodeSpec]:
    """One policy node shared by the fleet when the policy is learned."""
    if policy not in SERVED_POLICIES:
        return []
    return [NodeSpec("qtopt_policy", "policy_node", "qtopt_policy.policy_node", "",
                     "policy_node", {"model_path": model_path},
                     Interfaces(subscribes=(Endpoint.of(MODEL_UPDATES_TOPIC, ModelUpdate),),
                                services=(Endpoint.of(SELECT_ACTION_SERVICE, SelectAction),)))]


def sim_cell_graph(config: CellGraphConfig) -> list[NodeSpec]:
    """Per cell: the simulated devices, success detector, episode runner and recorder; plus
    one policy node shared by the fleet when the policy is learned, and the episode driver
    when the config has one."""
    specs: list[NodeSpec] = []
    for i in range(config.cells):
        ns = cell_namespace(i)
        specs += [
            NodeSpec("qtopt_collector", "sim_cell_node", "qtopt_collector.sim_cell_node", ns,
                     parameters=config_to_parameters(config.sim),
                     interfaces=_SIM + _CAMERA + _ARM + _GRIPPER),
            NodeSpec("qtopt_collector", "success_node", "qtopt_collector.success_node", ns,
                     "success_detector",
                     {"ground_truth_service": HELD_OBJECT_SERVICE, "label": config.sim.label,
                      "timeout_s": config.timeout_s,
                      **config_to_parameters(config.sim.drop_test, "drop_test.")},
                     _success_interfaces(HELD_OBJECT_SERVICE)),
            *_episode_nodes(ns, config.policy, config.out_dir, config.timeout_s, config.episode,
                            {"camera": config.sim.camera().to_json(),
                             "label_source": config.sim.label}),
        ]
    namespaces = [cell_namespace(i) for i in range(config.cells)]
    return specs + _policy_node(config.policy, config.model_path) + _driver_node(
        config.driver, namespaces)


@dataclass(frozen=True)
class RealCellGraphConfig:
    """One real KUKA cell: device nodes with hardware backends (see hardware_backends)."""

    cell_id: str = "cell0"
    arm_backend: str = "trajectory"  # "trajectory" (ros2_control) or "servo" (MoveIt Servo)
    image_topic: str = "/camera/color/image_raw"
    policy: str = "greedy"
    model_path: str = ""
    out_dir: str = "data"
    episode: EpisodeConfig = field(default_factory=main_job_episode)  # the runner's loop
    # seconds the cell's nodes wait for a service (episode runner, success detector)
    timeout_s: float = bounded(60.0, gt=0)
    # The cell's episode driver (in the cell's namespace); None where something else sends
    # the goals.
    driver: EpisodeDriverConfig | None = None

    def __post_init__(self) -> None:
        check_bounds(self)


def real_cell_graph(config: RealCellGraphConfig) -> list[NodeSpec]:
    """The same graph shape as in simulation, with hardware device nodes and no ground truth.
    The device nodes' interfaces leave out the topics their backends exchange with ros2_control
    or MoveIt Servo (backend parameters, see hardware_backends), except the camera driver's
    image topic, which the graph sets."""
    ns = config.cell_id
    driver_image = Interfaces(subscribes=(Endpoint.of(config.image_topic, Image),))
    specs = [
        NodeSpec("qtopt_collector", "arm_node", "qtopt_collector.device_nodes", ns, "arm",
                 {"backend": config.arm_backend}, _ARM),
        NodeSpec("qtopt_collector", "gripper_node", "qtopt_collector.device_nodes", ns,
                 "gripper", interfaces=_GRIPPER),
        NodeSpec("qtopt_collector", "camera_node", "qtopt_collector.device_nodes", ns, "camera",
                 {"image_topic": config.image_topic}, _CAMERA + driver_image),
        NodeSpec("qtopt_collector", "success_node", "qtopt_collector.success_node", ns,
                 "success_detector", {"timeout_s": config.timeout_s}, _success_interfaces("")),
        *_episode_nodes(ns, config.policy, config.out_dir, config.timeout_s, config.episode),
    ]
    return specs + _policy_node(config.policy, config.model_path) + _driver_node(
        config.driver, [ns], ns)
