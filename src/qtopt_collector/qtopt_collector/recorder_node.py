"""recorder_node: writes every finished episode from ``episodes`` to rosbag2 (MCAP).

Subscribes with ``raw=True``: the serialized ``Episode`` bytes go to the bag as they arrived,
without a deserialize/serialize round trip. After each episode is safely on disk its id is
published on ``recorded``, so a supervisor can stop the graph without losing one in a queue.
Each episode is checked first (``EpisodeIntake``): a malformed one is not recorded but logged
as one error line and counted (``intake.rejected``), and the node goes on.
Parameters mirror ``RecorderConfig``, including the provenance every bag records: ``camera``
(the cell's ``CameraSpec`` as JSON) and ``label_source``, and ``step_topics``: each step's
camera frame and gripper state also on standard topics in the bag.
"""

from __future__ import annotations

import sys

from rclpy.node import Node
from std_msgs.msg import String

from qtopt_collector.bag_format import EpisodeIntake
from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig
from qtopt_msgs.msg import Episode
from qtopt_policy.episode_record import EpisodeLimits
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros.qos import EPISODE_QOS
from qtopt_policy.ros_names import EPISODES_TOPIC, RECORDED_TOPIC
from qtopt_policy.ros_params import declare_config
from qtopt_policy.spec import CameraSpec


class RecorderNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("recorder", **kwargs)
        self.config = declare_config(self, RecorderConfig)
        self.recorder = BagRecorder(self.config)
        camera = CameraSpec.from_json(self.config.camera) if self.config.camera else CameraSpec()
        self.intake = EpisodeIntake(EpisodeLimits(camera=camera), self.get_logger().error)
        self.recorded = self.create_publisher(String, RECORDED_TOPIC, EPISODE_QOS)
        self.create_subscription(Episode, EPISODES_TOPIC, self._on_episode, EPISODE_QOS,
                                 raw=True)

    def _on_episode(self, data: bytes) -> None:
        data = bytes(data)
        record = self.intake.take(data)  # a malformed episode is logged, counted and dropped
        if record is None:
            return
        bag = self.recorder.write_serialized(data, self.get_clock().now().nanoseconds, record)
        self.get_logger().info(f"recorded {record.episode_id} in {bag}")
        self.recorded.publish(String(data=record.episode_id))


def main(args: list[str] | None = None) -> int:
    return spin_nodes(lambda: [RecorderNode()], args=args)


if __name__ == "__main__":
    sys.exit(main())
