"""Two-process ROS 2 transport check over the shipped loopback-only FastDDS profile.

A *responder* process subscribes to observations and acknowledges each one with a checksum of
its image, and serves ``SelectAction`` with an action derived from the request's image. An
*initiator* publishes observations one at a time (ping-pong, reliable QoS), verifies every
acknowledgement and service reply, and reports round-trip latencies. The workspace tests and the
main job's self-check both run it.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from qtopt_msgs.msg import Observation
from qtopt_msgs.srv import SelectAction
from qtopt_policy.msg_conversions import image_from_msg, observation_to_msg
from qtopt_policy.ros.qos import RELIABLE
from qtopt_policy.ros_env import lease_domain_id, ros_environment

OBSERVATION_TOPIC = "transport_check/observation"
ACK_TOPIC = "transport_check/ack"
SERVICE = "transport_check/select_action"


def image_checksum(image: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(image).tobytes())


def expected_world_vector(image: np.ndarray) -> np.ndarray:
    """The responder's deterministic 'action': the image's per-channel mean in [0, 1]."""
    return (image.reshape(-1, 3).mean(axis=0) / 255.0).astype(np.float32)


class Responder(Node):
    """Acknowledges observations and answers SelectAction from the image content."""

    def __init__(self, context: Context | None = None) -> None:
        super().__init__("transport_check_responder", context=context)
        self._ack = self.create_publisher(String, ACK_TOPIC, RELIABLE)
        self.create_subscription(Observation, OBSERVATION_TOPIC, self._on_observation, RELIABLE)
        self.create_service(SelectAction, SERVICE, self._on_select_action)

    def _on_observation(self, msg: Observation) -> None:
        image = image_from_msg(msg.image)
        self._ack.publish(String(data=f"{msg.header.frame_id} {image_checksum(image)}"))

    def _on_select_action(
        self, request: SelectAction.Request, response: SelectAction.Response
    ) -> SelectAction.Response:
        image = image_from_msg(request.observation.image)
        response.action.world_vector = expected_world_vector(image)
        response.action.vertical_rotation = [math.sin(request.step), math.cos(request.step)]
        response.action.gripper_close = request.observation.gripper_closed
        response.action.gripper_open = not request.observation.gripper_closed
        response.q_value = float(image_checksum(image) % 1000) / 1000.0
        response.success = True
        return response


@dataclass
class CheckResult:
    """What the initiator measured; ``errors`` is empty when every exchange verified."""

    image_size: int
    observations: int
    service_calls: int
    topic_rtt_ms: list[float] = field(default_factory=list)
    service_rtt_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and len(self.topic_rtt_ms) == self.observations and len(
            self.service_rtt_ms
        ) == self.service_calls

    def table(self) -> str:
        rows = [f"{'exchange':<28}{'count':>7}{'p50 ms':>9}{'p99 ms':>9}"]
        for name, values in (
            (f"observation {self.image_size}px topic", self.topic_rtt_ms),
            (f"SelectAction {self.image_size}px", self.service_rtt_ms),
        ):
            p50, p99 = (np.percentile(values, [50, 99]) if values else (math.nan, math.nan))
            rows.append(f"{name:<28}{len(values):>7}{p50:>9.2f}{p99:>9.2f}")
        return "\n".join(rows)


class Initiator(Node):
    def __init__(self, context: Context) -> None:
        super().__init__("transport_check_initiator", context=context)
        self.publisher = self.create_publisher(Observation, OBSERVATION_TOPIC, RELIABLE)
        # frame id -> (arrival time, acknowledgement text) of its first acknowledgement
        self.acks: dict[str, tuple[float, str]] = {}
        self.create_subscription(String, ACK_TOPIC, self._on_ack, RELIABLE)
        self.client = self.create_client(SelectAction, SERVICE)

    def _on_ack(self, msg: String) -> None:
        self.acks.setdefault(msg.data.split(" ", 1)[0], (time.perf_counter(), msg.data))

    def handshake(self, executor: SingleThreadedExecutor, timeout_s: float) -> bool:
        """Publish a warm-up observation until it is acknowledged: discovery has then matched
        both topics in both directions, which the graph queries alone do not prove."""
        msg = observation_to_msg(np.zeros((2, 2, 3), np.uint8), False, 0.0)
        msg.header.frame_id = "warmup"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.publisher.publish(msg)
            if _spin_until(executor, lambda: "warmup" in self.acks, 0.5):
                return True
        return False


def _spin_until(executor: SingleThreadedExecutor, done, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.01)
    return True


def run_initiator(
    observations: int = 20,
    service_calls: int = 20,
    image_size: int = 472,
    timeout_s: float = 30.0,
    seed: int = 0,
) -> CheckResult:
    """Exchange observations and SelectAction calls with a running responder; verify all.

    The ROS environment (domain id, profile) must already be set in ``os.environ``.
    """
    result = CheckResult(image_size, observations, service_calls)
    rng = np.random.default_rng(seed)
    context = Context()
    rclpy.init(context=context)
    try:
        node = Initiator(context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        matched = _spin_until(
            executor,
            lambda: node.publisher.get_subscription_count() > 0
            and node.client.service_is_ready(),
            timeout_s,
        ) and node.handshake(executor, timeout_s)
        if not matched:
            result.errors.append(f"responder not discovered within {timeout_s} s")
            return result
        for i in range(observations):
            image = rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
            msg = observation_to_msg(image, gripper_closed=bool(i % 2), height_to_bottom=0.2)
            msg.header.frame_id = str(i)
            sent = time.perf_counter()
            node.publisher.publish(msg)
            if not _spin_until(executor, lambda i=i: str(i) in node.acks, timeout_s):
                result.errors.append(f"no acknowledgement for observation {i}")
                return result
            received, text = node.acks[str(i)]
            if text != f"{i} {image_checksum(image)}":
                result.errors.append(f"observation {i}: acknowledgement {text!r} does not match")
            result.topic_rtt_ms.append((received - sent) * 1e3)
        for i in range(service_calls):
            image = rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)
            request = SelectAction.Request(step=i)
            request.observation = observation_to_msg(image, bool(i % 2), 0.1)
            sent = time.perf_counter()
            future = node.client.call_async(request)
            if not _spin_until(executor, future.done, timeout_s):
                result.errors.append(f"SelectAction call {i} timed out")
                return result
            result.service_rtt_ms.append((time.perf_counter() - sent) * 1e3)
            response = future.result()
            expected = expected_world_vector(image)
            if not (
                response.success
                and np.allclose(response.action.world_vector, expected, atol=1e-6)
                and response.action.gripper_close == bool(i % 2)
                and math.isclose(response.action.vertical_rotation[0], math.sin(i), abs_tol=1e-6)
            ):
                result.errors.append(f"SelectAction call {i}: reply does not match the request")
        return result
    finally:
        rclpy.shutdown(context=context)


def respond(timeout_s: float) -> int:
    """Run the responder until SIGINT/SIGTERM or ``timeout_s``; return an exit code."""
    context = Context()
    rclpy.init(context=context, signal_handler_options=rclpy.signals.SignalHandlerOptions.ALL)
    node = Responder(context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout_s
    try:
        while context.ok() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return 0


def start_responder(env: dict[str, str], timeout_s: float = 120.0) -> subprocess.Popen:
    """Start the responder in its own process with ``env`` (from :func:`ros_environment`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "qtopt_policy.ros.transport_check", "respond",
         "--timeout", str(timeout_s)],
        env=env,
    )


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """SIGINT a child node process and wait for it; kill it if it does not end in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def run_check(image_size: int = 472, count: int = 20, log_dir: Path | None = None) -> CheckResult:
    """Lease a domain, start a responder process and run the initiator against it."""
    with lease_domain_id() as domain_id:
        env = ros_environment(domain_id, log_dir)
        saved = dict(os.environ)
        os.environ.update(env)
        proc = start_responder(env)
        try:
            return run_initiator(count, count, image_size)
        finally:
            stop_process(proc)
            os.environ.clear()
            os.environ.update(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("respond", help="run the responder (started by `run`)")
    r.add_argument("--timeout", type=float, default=120.0)
    c = sub.add_parser("run", help="start a responder process and check the exchange")
    c.add_argument("--image-size", type=int, default=472)
    c.add_argument("--count", type=int, default=50)
    args = parser.parse_args(argv)
    if args.command == "respond":
        return respond(args.timeout)
    result = run_check(args.image_size, args.count)
    print(result.table())
    for error in result.errors:
        print(f"ERROR: {error}", file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
