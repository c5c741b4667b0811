"""No DDS packet leaves the loopback interface under the shipped environment.

Both processes of the transport check run inside a fresh network namespace whose only other
interface is a veth link to a peer namespace (both made by this test, removed after it). The
veth's transmit counter must not move. A control run with DDS's default subnet discovery and
no profile must move it, which shows the counter would catch a leak.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from qtopt_policy.ros_env import lease_domain_id, ros_environment

pytestmark = [
    pytest.mark.ros,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="needs root and iproute2 to create network namespaces",
    ),
]

LEAK_PROBE = """
import time, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("leak_probe")
pub = node.create_publisher(String, "leak_probe", 10)
end = time.monotonic() + 3.0
while time.monotonic() < end:
    pub.publish(String(data="x"))
    rclpy.spin_once(node, timeout_sec=0.1)
rclpy.shutdown()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextmanager
def isolated_namespace() -> Iterator[tuple[str, str]]:
    """A netns with lo and one veth (10.213.x.1) whose peer sits in a second netns."""
    tag = f"{os.getpid() % 100000}"
    ns, peer, veth, vpeer = f"qtopt_ns{tag}", f"qtopt_peer{tag}", f"qtv{tag}", f"qtp{tag}"
    subnet = f"10.213.{os.getpid() % 250}"
    try:
        _ip("netns", "add", ns)
        _ip("netns", "add", peer)
        _ip("link", "add", veth, "type", "veth", "peer", "name", vpeer)
        _ip("link", "set", veth, "netns", ns)
        _ip("link", "set", vpeer, "netns", peer)
        for space, dev, addr in ((ns, veth, f"{subnet}.1/24"), (peer, vpeer, f"{subnet}.2/24")):
            # No IPv6 on the link: its router/neighbour solicitations would be noise.
            subprocess.run(["ip", "netns", "exec", space, "sysctl", "-qw",
                            "net.ipv6.conf.all.disable_ipv6=1"], check=True)
            _ip("-n", space, "link", "set", "lo", "up")
            _ip("-n", space, "addr", "add", addr, "dev", dev)
            _ip("-n", space, "link", "set", dev, "up")
        _ip("-n", ns, "route", "add", "default", "via", f"{subnet}.2")
        yield ns, veth
    finally:
        for space in (ns, peer):
            subprocess.run(["ip", "netns", "del", space], capture_output=True)


def _tx_packets(ns: str, dev: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/statistics/tx_packets"],
        check=True, capture_output=True, text=True,
    )
    return int(out.stdout)


def test_transport_check_sends_nothing_off_loopback(tmp_path):
    with isolated_namespace() as (ns, veth):
        before = _tx_packets(ns, veth)
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "qtopt_policy.ros.transport_check",
             "run", "--count", "5", "--image-size", "64"],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert _tx_packets(ns, veth) - before == 0


def test_control_default_discovery_is_seen_leaving(tmp_path):
    with isolated_namespace() as (ns, veth), lease_domain_id() as domain_id:
        env = ros_environment(domain_id, tmp_path / "log")
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
        env.pop("FASTDDS_DEFAULT_PROFILES_FILE")
        before = _tx_packets(ns, veth)
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", LEAK_PROBE],
                       env=env, check=True, capture_output=True, timeout=60)
        assert _tx_packets(ns, veth) - before > 0
