"""The cell graph as data (DESIGN.md rule 7).

Which nodes a simulated fleet runs, with their parameters and namespaces, is described here
once. ``launch/cell.launch.py`` turns it into ``launch_ros`` Node actions on a real ROS 2
install; :mod:`qtopt_collector.runner` starts the same processes on machines without
``ros2 launch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_policy.policies import LOCAL_POLICIES, SERVED_POLICIES
from qtopt_policy.ros_params import config_to_parameters


@dataclass(frozen=True)
class NodeSpec:
    package: str
    executable: str  # console script, as `ros2 run <package> <executable>`
    module: str  # Python module whose main() it runs
    namespace: str = ""
    name: str = ""  # node name override; "" for processes that hold several nodes
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CellGraphConfig:
    cells: int = 1
    policy: str = "scripted"
    out_dir: str = "data"
    # Every runner's loop, App. C's termination and step-penalty ablations among its fields.
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    model_path: str = ""  # TorchScript model for greedy/noisy
    timeout_s: float = 60.0
    sim: SimCellConfig = field(default_factory=SimCellConfig)

    def __post_init__(self) -> None:
        if self.cells < 1:
            raise ValueError(f"cells {self.cells}: expected >= 1")
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
    return [
        NodeSpec("qtopt_collector", "episode_runner_node", "qtopt_collector.episode_runner_node",
                 ns, "episode_runner", runner),
        NodeSpec("qtopt_collector", "recorder_node", "qtopt_collector.recorder_node", ns,
                 "recorder", {"out_dir": out_dir, "cell_id": ns, **(provenance or {})}),
    ]


def _policy_node(policy: str, model_path: str) -> list[NodeSpec]:
    """One policy node shared by the fleet when the policy is learned."""
    if policy not in SERVED_POLICIES:
        return []
    return [NodeSpec("qtopt_policy", "policy_node", "qtopt_policy.policy_node", "",
                     "policy_node", {"model_path": model_path})]


def sim_cell_graph(config: CellGraphConfig) -> list[NodeSpec]:
    """Per cell: the simulated devices, success detector, episode runner and recorder; plus
    one policy node shared by the fleet when the policy is learned."""
    specs: list[NodeSpec] = []
    for i in range(config.cells):
        ns = cell_namespace(i)
        specs += [
            NodeSpec("qtopt_collector", "sim_cell_node", "qtopt_collector.sim_cell_node", ns,
                     parameters=config_to_parameters(config.sim)),
            NodeSpec("qtopt_collector", "success_node", "qtopt_collector.success_node", ns,
                     "success_detector",
                     {"ground_truth_service": "sim/held_object", "label": config.sim.label,
                      "timeout_s": config.timeout_s,
                      **config_to_parameters(config.sim.drop_test, "drop_test.")}),
            *_episode_nodes(ns, config.policy, config.out_dir, config.timeout_s, config.episode,
                            {"camera": config.sim.camera().to_json(),
                             "label_source": config.sim.label}),
        ]
    return specs + _policy_node(config.policy, config.model_path)


@dataclass(frozen=True)
class RealCellGraphConfig:
    """One real KUKA cell: device nodes with hardware backends (see hardware_backends)."""

    cell_id: str = "cell0"
    arm_backend: str = "trajectory"  # "trajectory" (ros2_control) or "servo" (MoveIt Servo)
    image_topic: str = "/camera/color/image_raw"
    policy: str = "greedy"
    model_path: str = ""
    out_dir: str = "data"
    timeout_s: float = 60.0


def real_cell_graph(config: RealCellGraphConfig) -> list[NodeSpec]:
    """The same graph shape as in simulation, with hardware device nodes and no ground truth."""
    ns = config.cell_id
    specs = [
        NodeSpec("qtopt_collector", "arm_node", "qtopt_collector.device_nodes", ns, "arm",
                 {"backend": config.arm_backend}),
        NodeSpec("qtopt_collector", "gripper_node", "qtopt_collector.device_nodes", ns,
                 "gripper"),
        NodeSpec("qtopt_collector", "camera_node", "qtopt_collector.device_nodes", ns, "camera",
                 {"image_topic": config.image_topic}),
        NodeSpec("qtopt_collector", "success_node", "qtopt_collector.success_node", ns,
                 "success_detector", {"timeout_s": config.timeout_s}),
        *_episode_nodes(ns, config.policy, config.out_dir, config.timeout_s),
    ]
    return specs + _policy_node(config.policy, config.model_path)
