"""learner_node: the learner as a ROS 2 node (Sec. 4.3, App. F.1-F.3).

Subscribes to live episodes (one ``Episode`` topic per cell, raw CDR), persists each to rosbag2
(the online data is kept, like the paper's online buffer on disk) unless the cells' recorders
already do, and adds it to the "online" replay buffer; on start it reloads the live episodes
kept in ``online_dir``, so a restarted learner trains on everything collected before. Trains
in a background thread on the configured engine; the engine calls back with every exported
model, which goes out as a ``ModelUpdate`` (transient local, so a policy node that starts later
still gets the newest); ``TrainingStatus`` is published periodically. Parameters mirror
LearnerNodeConfig, with the learner's own config under ``learner.``.
A malformed live episode (``EpisodeIntake``) is dropped with one logged error line and counted
(``intake.rejected``); the node goes on.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.node import Node

from qtopt_collector.bag_format import EpisodeIntake
from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig, read_episodes
from qtopt_learner.distributed.engine import make_learner
from qtopt_learner.distributed.roles import ONLINE, ModelAnnouncement
from qtopt_learner.distributed.training_loop import TrainingSummary
from qtopt_learner.learner_config import LearnerConfig
from qtopt_msgs.msg import Episode, ModelUpdate, TrainingStatus
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.episode_record import EpisodeLimits
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros.qos import EPISODE_QOS, MODEL_UPDATE_QOS
from qtopt_policy.ros_names import EPISODES_TOPIC, MODEL_UPDATES_TOPIC, TRAINING_STATUS_TOPIC
from qtopt_policy.ros_params import declare_config


@dataclass(frozen=True)
class LearnerNodeConfig:
    episode_topics: tuple[str, ...] = (EPISODES_TOPIC,)  # one per cell, e.g. /cell0/episodes
    # Live episodes on disk, reloaded on start; default <run_dir>/online
    online_dir: str = ""
    # Write each live episode into online_dir; off when the cells' recorders write them there.
    persist_online: bool = True
    status_period_s: float = bounded(1.0, gt=0)  # between TrainingStatus messages
    learner: LearnerConfig = field(default_factory=LearnerConfig)

    def __post_init__(self) -> None:
        check_bounds(self)


class LearnerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("learner", **kwargs)
        self.config = declare_config(self, LearnerNodeConfig)
        learner_config = self.config.learner
        online_dir = Path(self.config.online_dir or Path(learner_config.run_dir) / "online")
        camera = learner_config.camera
        # Kept only to reload the online buffer: the cells' own bags carry the step topics.
        self.recorder = BagRecorder(RecorderConfig(
            out_dir=str(online_dir), cell_id="online",
            camera=camera.to_json() if camera.known else "",
            label_source=learner_config.label_source, step_topics=False,
        )) if self.config.persist_online else None
        # Episodes the network can train on: actions in the bounds, frames of the camera (or of
        # one size) that hold the network's crop.
        self.intake = EpisodeIntake(EpisodeLimits(
            min_image_size=learner_config.network.image_size, camera=camera),
            self.get_logger().error)
        self.learner = make_learner(learner_config, progress=False).start()
        self.hub = self.learner.hub
        if self.learner.resumed_from is not None:
            self.get_logger().info(f"resumed from {self.learner.resumed_from} at step "
                                   f"{self.learner.start_step}")
        reloaded = self._reload(online_dir) if online_dir.exists() else 0
        if reloaded:
            self.get_logger().info(f"reloaded {reloaded} live episodes from {online_dir}")
        self.episodes_received = 0
        self.model_version = 0
        self.updates = self.create_publisher(ModelUpdate, MODEL_UPDATES_TOPIC, MODEL_UPDATE_QOS)
        self.learner.on_model(self._on_model)
        self.status = self.create_publisher(TrainingStatus, TRAINING_STATUS_TOPIC, 10)
        for topic in self.config.episode_topics:
            self.create_subscription(Episode, topic, self._on_episode, EPISODE_QOS, raw=True)
        self.create_timer(self.config.status_period_s, self._publish_status)
        self.summary: TrainingSummary | None = None
        self._thread = threading.Thread(target=self._train, name="trainer", daemon=True)
        self._thread.start()

    def _reload(self, online_dir: Path, chunk: int = 100) -> int:
        """Add the episodes kept in ``online_dir`` to the online buffer, a chunk at a time (one
        call each to a remote hub, never all images at once)."""
        count, records = 0, []
        for record in read_episodes(online_dir, self.intake.limits):
            records.append(record)
            if len(records) == chunk:
                self.hub.add_episodes(ONLINE, records)
                count, records = count + len(records), []
        self.hub.add_episodes(ONLINE, records)
        return count + len(records)

    def _train(self) -> None:
        self.summary = self.learner.train()
        self.get_logger().info(f"training finished at step {self.summary.step}")

    def _on_episode(self, data: bytes) -> None:
        data = bytes(data)
        record = self.intake.take(data)  # a malformed episode is logged, counted and dropped
        if record is None:
            return
        if self.recorder is not None:
            self.recorder.write_serialized(data, self.get_clock().now().nanoseconds)
        self.hub.add_episodes(ONLINE, [record])
        self.episodes_received += 1

    def _on_model(self, model: ModelAnnouncement) -> None:
        """The engine's callback for every export (from the training thread)."""
        self.model_version = model.version
        if not self.context.ok():  # the export that ends a shutdown: nobody left to tell
            return
        msg = ModelUpdate(model_path=model.path, version=model.version,
                          training_step=model.training_step, sha256=model.sha256)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.updates.publish(msg)
        self.get_logger().info(f"announced model version {model.version}")

    def _publish_status(self) -> None:
        replay, ring = self.hub.replay_stats(), self.hub.ring_stats()
        status = self.hub.trainer_status()
        msg = TrainingStatus(
            step=status.step, target_steps=status.target_steps,
            offline_transitions=replay.offline.transitions,
            online_transitions=replay.online.transitions,
            online_episodes_received=self.episodes_received, train_size=ring.size,
            on_policy_fraction=float(replay.on_policy_fraction),
            waiting_for_data=status.waiting_for_data, model_version=self.model_version,
            finished=status.finished, loss=status.loss, q_mean=status.q_mean,
            target_mean=status.target_mean, target_lag=status.target_lag,
            steps_per_s=status.steps_per_s)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.status.publish(msg)

    def destroy_node(self) -> None:
        # The trainer ends its run with a checkpoint and an export: let it finish before the
        # engine's workers (Ray actors) go away.
        self.hub.stop()
        self._thread.join(timeout=60)
        self.learner.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return spin_nodes(lambda: [LearnerNode()], args=args)


if __name__ == "__main__":
    sys.exit(main())
