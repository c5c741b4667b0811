"""episode_runner_node: runs Algorithm 1 on a cell through ROS 2 (RunEpisode action).

The same :func:`~qtopt_collector.episode.run_episode` loop as in process, against a
:class:`RosCell` (the cell's reset, camera, arm, gripper and success services) and a policy:
the scripted one locally, or the policy node's ``select_action`` service for ``greedy`` and
``noisy``. Each finished episode is published whole on ``episodes`` (for the recorder and live
learners); a failed episode publishes nothing, so no half episode reaches a bag. With
``wait_for_recorder`` a goal succeeds only after the recorder has acknowledged the episode on
``recorded`` (it is on disk); otherwise it aborts and the caller runs another episode.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from rclpy.action import ActionServer
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import SetBool

from qtopt_collector.bag_format import serialize_episode
from qtopt_collector.episode import EpisodeConfig, GraspLabel, run_episode
from qtopt_collector.ros.service_calls import ServiceCaller
from qtopt_msgs.action import RunEpisode
from qtopt_msgs.msg import Episode
from qtopt_msgs.srv import ArmCommand, CaptureImage, DetectGraspSuccess, ResetCell, SelectAction
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.msg_conversions import action_from_msg, image_from_msg, observation_to_msg
from qtopt_policy.names import LOCAL_POLICIES, SERVED_POLICIES
from qtopt_policy.policies import Policy, PolicyOutput, local_policy
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros.qos import EPISODE_QOS
from qtopt_policy.ros_names import (
    ARM_COMMAND_SERVICE,
    CAMERA_CAPTURE_SERVICE,
    EPISODES_TOPIC,
    GRIPPER_COMMAND_SERVICE,
    RECORDED_TOPIC,
    RESET_CELL_SERVICE,
    RUN_EPISODE_ACTION,
    SELECT_ACTION_SERVICE,
    SUCCESS_DETECT_SERVICE,
)
from qtopt_policy.ros_params import declare_config
from qtopt_policy.spec import Action, ActionBounds, Observation


@dataclass(frozen=True)
class EpisodeRunnerConfig:
    cell_id: str = "cell0"  # recorded with every episode
    policy: str = "scripted"  # scripted, scripted_noisy (local); greedy, noisy (policy node)
    # A goal's max_steps and scripted_termination, when set, override these.
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)
    select_action_service: str = f"/{SELECT_ACTION_SERVICE}"  # the policy node's service
    # s to wait for a service (cell, policy, success detector) and for the recorder
    timeout_s: float = bounded(60.0, gt=0)
    wait_for_recorder: bool = True  # succeed only once the recorder has the episode on disk

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.policy not in LOCAL_POLICIES + SERVED_POLICIES:
            raise ValueError(
                f"policy {self.policy!r}: expected one of {LOCAL_POLICIES + SERVED_POLICIES}"
            )


class RosCell:
    """The :class:`~qtopt_collector.episode.Cell` protocol over a cell's services."""

    def __init__(self, calls: ServiceCaller) -> None:
        self.calls = calls
        self.object_ids: list[str] = []
        self.height = 0.0
        self.gripper_closed = False

    def reset(self, seed: int) -> Observation:
        response = self.calls.call(ResetCell, RESET_CELL_SERVICE,
                                   ResetCell.Request(seed=seed))
        self.object_ids = list(response.object_ids)
        self.height = response.height_to_bottom
        self.calls.call(SetBool, GRIPPER_COMMAND_SERVICE, SetBool.Request(data=False))
        self.gripper_closed = False
        return self.observe()

    def observe(self) -> Observation:
        response = self.calls.call(CaptureImage, CAMERA_CAPTURE_SERVICE,
                                   CaptureImage.Request())
        return Observation(image_from_msg(response.image).copy(), self.gripper_closed,
                           self.height)

    def execute(self, action: Action) -> None:
        if action.gripper_close != self.gripper_closed:
            self.calls.call(SetBool, GRIPPER_COMMAND_SERVICE,
                            SetBool.Request(data=action.gripper_close))
            self.gripper_closed = action.gripper_close
        request = ArmCommand.Request(command=ArmCommand.Request.MOVE_RELATIVE,
                                     translation=list(action.translation),
                                     rotation=action.rotation)
        self.height = self.calls.call(ArmCommand, ARM_COMMAND_SERVICE,
                                     request).height_to_bottom

    def label_grasp(self) -> GraspLabel:
        response = self.calls.call(DetectGraspSuccess, SUCCESS_DETECT_SERVICE,
                                   DetectGraspSuccess.Request(), ok_field="ok")
        truth = None if response.ground_truth < 0 else bool(response.ground_truth)
        return GraspLabel(bool(response.success), truth)


class RemotePolicy:
    """A :class:`~qtopt_policy.policies.Policy` served by the policy node."""

    def __init__(self, calls: ServiceCaller, service: str, name: str) -> None:
        self.calls, self.service, self.name = calls, service, name
        self.model_version = 0

    def reset(self, seed: int) -> None:
        self.model_version = 0

    def select_action(self, observation: Observation, step: int) -> PolicyOutput:
        request = SelectAction.Request(step=step, policy=self.name)
        request.observation = observation_to_msg(observation.image, observation.gripper_closed,
                                                 observation.height_to_bottom)
        response = self.calls.call(SelectAction, self.service, request)
        self.model_version = int(response.model_version)
        return PolicyOutput(action_from_msg(response.action), float(response.q_value))


class EpisodeRunnerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("episode_runner", **kwargs)
        self.config = declare_config(self, EpisodeRunnerConfig)
        self.calls = ServiceCaller(self, self.config.timeout_s)
        self.cell = RosCell(self.calls)
        self.episodes = self.create_publisher(Episode, EPISODES_TOPIC, EPISODE_QOS)
        self._recorded: set[str] = set()
        self._recorded_changed = threading.Condition()
        self.create_subscription(String, RECORDED_TOPIC, self._on_recorded, EPISODE_QOS,
                                 callback_group=ReentrantCallbackGroup())
        self._server = ActionServer(self, RunEpisode, RUN_EPISODE_ACTION, self._execute,
                                    callback_group=MutuallyExclusiveCallbackGroup())

    def _on_recorded(self, msg: String) -> None:
        with self._recorded_changed:
            self._recorded.add(msg.data)
            self._recorded_changed.notify_all()

    def _publish_recorded(self, episode_id: str, data: bytes) -> None:
        """Publish the episode; with wait_for_recorder, return once it is on disk."""
        if not self.config.wait_for_recorder:
            self.episodes.publish(data)
            return
        deadline = time.monotonic() + self.config.timeout_s
        while self.episodes.get_subscription_count() == 0:  # never publish into the void
            if time.monotonic() > deadline:
                raise TimeoutError("no recorder subscribed to episodes")
            time.sleep(0.05)
        self.episodes.publish(data)
        with self._recorded_changed:
            if not self._recorded_changed.wait_for(lambda: episode_id in self._recorded,
                                                   max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"the recorder did not acknowledge {episode_id}")
            self._recorded.discard(episode_id)

    def _policy(self, name: str) -> Policy:
        name = name or self.config.policy
        if name in LOCAL_POLICIES:
            return local_policy(name, ActionBounds())
        if name in SERVED_POLICIES:
            return RemotePolicy(self.calls, self.config.select_action_service, name)
        raise ValueError(f"policy {name!r}: expected one of {LOCAL_POLICIES + SERVED_POLICIES}")

    def _execute(self, goal_handle) -> RunEpisode.Result:
        goal = goal_handle.request
        result = RunEpisode.Result()
        episode = self.config.episode
        config = dataclasses.replace(
            episode, max_steps=goal.max_steps or episode.max_steps,
            scripted_termination=goal.scripted_termination or episode.scripted_termination)

        def feedback(step: int, action: Action, q: float, observation: Observation) -> None:
            msg = RunEpisode.Feedback(step=step, q_value=q,
                                      height_to_bottom=observation.height_to_bottom)
            msg.action.world_vector = np.asarray(action.translation, np.float32)
            goal_handle.publish_feedback(msg)

        try:
            policy = self._policy(goal.policy)
            seed = int(goal.seed) or int(np.random.SeedSequence().entropy % (2**31))
            record = run_episode(self.cell, policy, seed, config, self.config.cell_id,
                                 on_step=feedback)
            record = dataclasses.replace(record,
                                         model_version=getattr(policy, "model_version", 0))
            self._publish_recorded(
                record.episode_id, serialize_episode(record, self.get_clock().now().nanoseconds))
        except (TimeoutError, RuntimeError, ValueError) as err:
            self.get_logger().error(f"episode aborted: {err}")
            goal_handle.abort()
            result.episode_id = f"aborted: {err}"
            return result
        goal_handle.succeed()
        result.episode_id, result.total_reward = record.episode_id, record.total_reward
        result.success, result.steps = record.success, len(record.steps)
        return result


def main(args: list[str] | None = None) -> int:
    return spin_nodes(lambda: [EpisodeRunnerNode()], threads=3, args=args)


if __name__ == "__main__":
    sys.exit(main())
