"""Two processes exchange 472x472 observations and SelectAction calls over the shipped profile."""

import os

import pytest

from qtopt_policy.ros.transport_check import run_initiator, start_responder, stop_process

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("image_size", [472, 64])
def test_observation_and_select_action_cross_processes(ros_domain, image_size):
    proc = start_responder(dict(os.environ), timeout_s=60)
    try:
        result = run_initiator(observations=10, service_calls=10, image_size=image_size)
    finally:
        code = stop_process(proc)
    assert result.errors == []
    assert result.ok
    assert len(result.topic_rtt_ms) == 10 and len(result.service_rtt_ms) == 10
    # The responder shuts down cleanly on SIGINT (ExternalShutdownException handled).
    assert code == 0


def test_initiator_reports_a_missing_responder(ros_domain):
    result = run_initiator(observations=1, service_calls=1, image_size=8, timeout_s=1.0)
    assert not result.ok
    assert result.errors == ["responder not discovered within 1.0 s"]
