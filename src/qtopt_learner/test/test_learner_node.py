"""learner_node over real ROS 2 in its own process: live episodes are persisted and trained
on under the fine-tuning balancer, exported models go out as ModelUpdate, status is published."""

import contextlib
import subprocess
import sys
import time
from typing import IO

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from qtopt_collector.bag_format import serialize_episode
from qtopt_collector.bag_recorder import read_episodes
from qtopt_msgs.msg import Episode, ModelUpdate, TrainingStatus
from qtopt_policy.ros.qos import EPISODE_QOS, MODEL_UPDATE_QOS
from qtopt_policy.ros.transport_check import stop_process
from qtopt_policy.torchscript_model import load_model

from .chain_mdp import episodes, write_bags

pytestmark = [pytest.mark.ros, pytest.mark.slow]


class Observer:
    def __init__(self):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("learner_observer", context=self.context)
        self.episodes = self.node.create_publisher(Episode, "/cell0/episodes", EPISODE_QOS)
        self.updates: list[ModelUpdate] = []
        self.status: list[TrainingStatus] = []
        self.node.create_subscription(ModelUpdate, "model_updates", self.updates.append,
                                      MODEL_UPDATE_QOS)
        self.node.create_subscription(TrainingStatus, "training_status", self.status.append, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, condition, timeout, what):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.executor.spin_once(timeout_sec=0.05)

    def publish(self, records):
        for record in records:
            self.episodes.publish(serialize_episode(record))

    def close(self):
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def start_learner_node(params: dict[str, str], log: IO[str]) -> subprocess.Popen:
    """A learner node process with ``params``, its output to ``log``."""
    args = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    return subprocess.Popen([sys.executable, "-m", "qtopt_learner.learner_node", "--ros-args",
                             *args], stdout=log, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def learner_node(tmp_path, params: dict[str, str]):
    """A learner node process with ``params`` and an observer of its topics."""
    log = open(tmp_path / "learner_node.log", "w+")
    proc = start_learner_node(params, log)
    observer = Observer()
    try:
        yield observer
    finally:
        observer.close()
        stop_process(proc)
        log.seek(0)
        print(log.read()[-3000:])
        log.close()


def test_learner_node_trains_on_live_episodes_and_announces_models(ros_domain, tmp_path):
    write_bags(tmp_path / "bags", 60)
    run = tmp_path / "run"
    params = {
        "episode_topics": "['/cell0/episodes']", "status_period_s": "0.2",
        "learner.run_dir": str(run), "learner.offline_paths": f"['{tmp_path / 'bags'}']",
        "learner.steps": "240", "learner.export_every": "40", "learner.checkpoint_every": "40",
        "learner.min_train_samples": "64", "learner.torch_threads": "1",
        "learner.fine_tuning.enabled": "true", "learner.fine_tuning.initial_steps": "40",
        "learner.fine_tuning.steps_per_transition": "4.0",
        "learner.fine_tuning.ramp_steps": "100",
    }
    with learner_node(tmp_path, params) as observer:
        # 40 steps are allowed before live data arrives; then the balancer holds training
        observer.spin_until(lambda: any(s.waiting_for_data and s.step >= 40
                                        for s in observer.status), 120, "the balancer to wait")
        assert observer.updates and observer.updates[-1].version == 40
        held = observer.status[-1].step
        assert held == 40
        live = episodes(60, seed=1000)  # ~1.7 transitions each: ~100 transitions, ~400 steps
        observer.publish(live)
        observer.spin_until(lambda: observer.status and observer.status[-1].finished, 240,
                            "training to finish")
        last = observer.status[-1]
        assert last.step == 240 and last.online_episodes_received == len(live)
        assert last.online_transitions == sum(len(e.steps) for e in live)
        assert last.on_policy_fraction > 0.4  # ramped 1 % -> 50 % over 100 steps
        observer.spin_until(lambda: observer.updates[-1].version == 240, 10, "final model")
        update = observer.updates[-1]
        model = load_model(update.model_path, expected_sha256=update.sha256)
        assert model.metadata.training_step == 240
        persisted = list(read_episodes(run / "online"))
        assert sorted(e.episode_id for e in persisted) == sorted(e.episode_id for e in live)


def test_a_restarted_learner_node_reloads_the_recorded_episodes(ros_domain, tmp_path):
    """The concurrent loop's resume: the cells' recorders keep the episodes (persist_online
    off), and a learner node started on that folder trains on them from the start, as many
    steps as they allow."""
    recorded = tmp_path / "episodes"
    write_bags(recorded, 20)
    before = sorted(e.episode_id for e in read_episodes(recorded))
    params = {
        "episode_topics": "['/cell0/episodes']", "status_period_s": "0.2",
        "online_dir": str(recorded), "persist_online": "false",
        "learner.run_dir": str(tmp_path / "run"), "learner.steps": "40",
        "learner.min_train_samples": "64", "learner.torch_threads": "1",
        "learner.fine_tuning.enabled": "true", "learner.fine_tuning.initial_steps": "0",
        "learner.fine_tuning.steps_per_transition": "1.0",
    }
    with learner_node(tmp_path, params) as observer:
        observer.spin_until(lambda: observer.status, 120, "the learner node")
        first = observer.status[-1]
        # every recorded episode is in the online buffer; none came live
        assert first.online_episodes_received == 0
        assert first.online_transitions == sum(len(e.steps) for e in episodes(20))
        # no checkpoint yet: the reloaded transitions allow their steps (1 each), then the
        # balancer waits for new episodes
        observer.spin_until(lambda: observer.status[-1].waiting_for_data
                            and observer.status[-1].step > 0, 60, "the balancer")
        assert observer.status[-1].step == first.online_transitions < 40
        live = episodes(30, seed=2000)  # ~50 transitions more: the 40 steps are allowed
        observer.publish(live)
        observer.spin_until(lambda: observer.status[-1].finished, 120, "training to finish")
        assert observer.status[-1].online_episodes_received == len(live)
        # the live episodes were not written a second time beside the recorders' copy
        assert sorted(e.episode_id for e in read_episodes(recorded)) == before
