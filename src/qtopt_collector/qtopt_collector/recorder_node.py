"""recorder_node: writes every finished episode from ``episodes`` to rosbag2 (MCAP).

Subscribes with ``raw=True``: the serialized ``Episode`` bytes go to the bag as they arrived,
without a deserialize/serialize round trip. After each episode is safely on disk its id is
published on ``recorded``, so a supervisor can stop the graph without losing one in a queue.
Parameters mirror ``RecorderConfig``, including the provenance every bag records: ``camera``
(the cell's ``CameraSpec`` as JSON) and ``label_source``.
"""

from __future__ import annotations

import sys

from rclpy.node import Node
from rclpy.serialization import deserialize_message
from std_msgs.msg import String

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig
from qtopt_msgs.msg import Episode
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros.qos import EPISODE_QOS
from qtopt_policy.ros_names import EPISODES_TOPIC, RECORDED_TOPIC
from qtopt_policy.ros_params import declare_config


class RecorderNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("recorder", **kwargs)
        self.config = declare_config(self, RecorderConfig)
        self.recorder = BagRecorder(self.config)
        self.recorded = self.create_publisher(String, RECORDED_TOPIC, EPISODE_QOS)
        self.create_subscription(Episode, EPISODES_TOPIC, self._on_episode, EPISODE_QOS,
                                 raw=True)

    def _on_episode(self, data: bytes) -> None:
        data = bytes(data)
        episode_id = deserialize_message(data, Episode).episode_id
        bag = self.recorder.write_serialized(data, self.get_clock().now().nanoseconds)
        self.get_logger().info(f"recorded {episode_id} in {bag}")
        self.recorded.publish(String(data=episode_id))


def main(args: list[str] | None = None) -> int:
    return spin_nodes(lambda: [RecorderNode()], args=args)


if __name__ == "__main__":
    sys.exit(main())
