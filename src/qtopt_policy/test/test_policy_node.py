"""policy_node over real ROS 2 in its own process: serving, hot reload, rejected models."""

import math
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
import torch
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from qtopt_msgs.msg import ModelUpdate
from qtopt_msgs.srv import SelectAction
from qtopt_policy.cem import CEMConfig
from qtopt_policy.msg_conversions import action_from_msg, observation_to_msg
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.ros.qos import MODEL_UPDATE_QOS
from qtopt_policy.ros.transport_check import stop_process
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import ModelMetadata, export_model

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _export(path, version, preset="sim", seed=0):
    torch.manual_seed(seed)
    net = QNetwork(PRESETS[preset]).eval()
    meta = ModelMetadata(preset, PRESETS[preset], ActionBounds(), CEMConfig(), version, version)
    return export_model(net, path, meta)


class Client:
    def __init__(self):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("policy_client", context=self.context)
        self.client = self.node.create_client(SelectAction, "select_action")
        self.updates = self.node.create_publisher(ModelUpdate, "model_updates", MODEL_UPDATE_QOS)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.rng = np.random.default_rng(0)

    def wait_for_service(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not self.client.service_is_ready():
            assert time.monotonic() < deadline, "policy_node did not come up"
            self.executor.spin_once(timeout_sec=0.05)

    def call(self, size=64, policy="", step=0):
        image = self.rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        request = SelectAction.Request(step=step, policy=policy)
        request.observation = observation_to_msg(image, False, 0.2)
        future = self.client.call_async(request)
        deadline = time.monotonic() + 30
        while not future.done():
            assert time.monotonic() < deadline, "SelectAction timed out"
            self.executor.spin_once(timeout_sec=0.01)
        return future.result()

    def announce(self, path, version, sha=""):
        self.updates.publish(ModelUpdate(model_path=str(path), version=version,
                                         training_step=version, sha256=sha))

    def stream_until(self, condition, timeout=20.0):
        """Call repeatedly until ``condition(response)``; return every response."""
        responses = []
        deadline = time.monotonic() + timeout
        while True:
            responses.append(self.call())
            if condition(responses[-1]) or time.monotonic() > deadline:
                return responses

    def close(self):
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def policy_node(ros_domain, tmp_path):
    model = tmp_path / "serving.pt"
    _export(model, 1)
    log = open(tmp_path / "policy_node.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "qtopt_policy.policy_node", "--ros-args",
         "-p", f"model_path:={model}", "-p", "reload_period_s:=0.5"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    client = Client()
    try:
        yield client, model, log, proc
    finally:
        client.close()
        stop_process(proc)
        log.close()


def test_serves_hot_reloads_and_rejects_bad_models(policy_node, tmp_path):
    client, model, log, proc = policy_node
    client.wait_for_service()
    first = [client.call(step=i) for i in range(5)]
    assert all(r.success and r.model_version == 1 for r in first)
    for r in first:
        action = action_from_msg(r.action)
        action.validate(ActionBounds())
        assert 0.0 <= r.q_value <= 1.0

    # Announced update while requests stream: no request fails, the version switches.
    sha2 = _export(tmp_path / "v2.pt", 2, seed=1)
    client.announce(tmp_path / "v2.pt", 2, sha2)
    streamed = client.stream_until(lambda r: r.model_version == 2)
    assert all(r.success for r in streamed)
    assert streamed[-1].model_version == 2

    # A corrupt file and an incompatible (472 px) model are rejected; version 2 keeps serving.
    # Announcements are latest-wins (depth 1), so each is sent once the previous was handled.
    def log_says(text):
        log.flush()
        return text in (tmp_path / "policy_node.log").read_text()

    corrupt = tmp_path / "v3.pt"
    corrupt.write_bytes((tmp_path / "v2.pt").read_bytes()[:4096])
    client.announce(corrupt, 3)
    after = client.stream_until(lambda r: log_says("not a TorchScript archive"))
    _export(tmp_path / "v4.pt", 4, preset="paper")
    client.announce(tmp_path / "v4.pt", 4)
    after += client.stream_until(lambda r: log_says("takes 472 px images: expected 64"))
    assert all(r.success and r.model_version == 2 for r in after)

    # Periodic reload (App. F.1) picks up a changed model_path without an announcement.
    _export(model, 5, seed=2)
    streamed = client.stream_until(lambda r: r.model_version == 5)
    assert all(r.success for r in streamed) and streamed[-1].model_version == 5

    # Bad requests get a reason, not a crash.
    bad = client.call(policy="bogus")
    assert not bad.success and "bogus" in bad.message and math.isnan(bad.q_value)
    wrong_size = client.call(size=32)
    assert not wrong_size.success and "(64, 64)" in wrong_size.message
    assert client.call(policy="noisy").success

    assert stop_process(proc) == 0
    assert log_says("rejected model") and log_says("not a TorchScript archive")
    assert log_says("takes 472 px images: expected 64")
