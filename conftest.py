"""Workspace-wide pytest fixtures: every test keeps DDS on this machine.

At import the whole test session gets the loopback-only ROS environment; tests that start ROS
contexts or nodes take ``ros_domain``, which leases a domain id no concurrent test or run uses
and gives the test its own ``ROS_LOG_DIR``.
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from qtopt_policy.ros_env import (
    apply_ros_environment,
    lease_domain_id,
    package_share_directory,
    ros_environment,
)

# Before any test module imports rclpy: localhost discovery, the shipped FastDDS profile, and
# a domain that is not the machine-wide default 0 (tests use ros_domain for their own).
apply_ros_environment(domain_id=int(os.environ.get("QTOPT_TEST_BASE_DOMAIN", "231")))
# Ray in tests is loopback-only: without this Ray rewrites a "127.0.0.1:port" cluster address
# to the host's own address (ray._private.services.resolve_ip_for_localhost), where a cluster
# bound to loopback does not listen. No usage statistics are sent, ever.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[int]:
    """Lease a test-unique ROS_DOMAIN_ID and set the local-only ROS environment for the test."""
    with lease_domain_id() as domain_id:
        env = ros_environment(domain_id, tmp_path / "ros_log")
        for key, value in env.items():
            if os.environ.get(key) != value:
                monkeypatch.setenv(key, value)
        yield domain_id


def assert_ament_package_installed(name: str) -> Path:
    """The package is in the ament index of the venv with a format-3 package.xml of its name."""
    share = package_share_directory(name)
    manifest = ET.parse(share / "package.xml").getroot()
    assert manifest.get("format") == "3"
    assert manifest.findtext("name") == name
    return share


def read_bags_both_ways(root: Path) -> tuple[list[str], list[str]]:
    """The episode ids in the bags below ``root``, read twice: by the project's reader (the
    files each bag's metadata lists) and independently by the ``mcap`` package (every MCAP
    file there, listed or not). Fails where either cannot read a bag, a file or a message,
    and where a file was moved aside as corrupt."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    from qtopt_collector.bag_files import episode_files
    from qtopt_collector.bag_recorder import log as recorder_log
    from qtopt_collector.bag_recorder import read_episodes

    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # read_episodes reports and skips what it cannot read
    recorder_log.addHandler(handler)
    try:
        project = [e.episode_id for e in read_episodes(root)]
    finally:
        recorder_log.removeHandler(handler)
    assert not errors, [r.getMessage() for r in errors]
    independent = []
    for path in episode_files([root]):
        with open(path, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            # the Episode topic only: the bags also hold each step on standard topics
            independent += [m.episode_id for _, _, _, m in reader.iter_decoded_messages(
                topics=["/episodes"])]
    assert not list(root.rglob("*.corrupt")), "a file was moved aside as unreadable"
    return project, independent
