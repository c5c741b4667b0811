"""Start a node graph (from :mod:`qtopt_collector.graph`) as processes and drive its cells.

The project's stand-in for ``ros2 launch`` on machines without it: each :class:`NodeSpec`
becomes ``python -m <module> --ros-args -r __ns:=... -p name:=value``, with the loopback-only
ROS environment and a leased domain. The runner supervises the processes (a dead one is
restarted) and sends ``RunEpisode`` goals to every cell in parallel (the goal logic the episode
driver node shares, :mod:`qtopt_collector.ros.episode_goals`); an episode whose cell died is run
again under a new seed, so only the episode in flight is lost.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from tqdm import tqdm

from qtopt_collector.episode_driver import CollectionStats, EpisodePlan, first_episode_seed
from qtopt_collector.graph import DRIVER_EXECUTABLE, NodeSpec
from qtopt_collector.ros.episode_goals import EpisodeGoals, PolicyChooser
from qtopt_msgs.action import RunEpisode
from qtopt_policy.ros_env import apply_ros_environment, lease_domain_id, ros_environment
from qtopt_policy.ros_names import RUN_EPISODE_ACTION

MAX_RESTARTS = 5
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the runner dies, so no node outlives it.
    Linux sends it when the spawning *thread* ends: start and supervise from one thread that
    lives as long as the graph."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def node_command(spec: NodeSpec) -> list[str]:
    cmd = [sys.executable, "-m", spec.module, "--ros-args"]
    if spec.namespace:
        cmd += ["-r", f"__ns:=/{spec.namespace}"]
    if spec.name:
        cmd += ["-r", f"__node:={spec.name}"]
    for key, value in spec.parameters.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip()
        cmd += ["-p", f"{key}:={text.removesuffix(chr(10) + '...')}"]
    return cmd


@dataclass
class _Process:
    spec: NodeSpec
    log_path: Path
    proc: subprocess.Popen | None = None
    restarts: int = 0


class GraphRunner:
    """Starts, supervises and stops the processes of a node graph."""

    def __init__(self, specs: list[NodeSpec], env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.processes = [
            _Process(s, log_dir / f"{s.namespace or 'global'}__{s.executable}.log")
            for s in specs
        ]

    def start(self) -> None:
        for p in self.processes:
            self._spawn(p)

    def _spawn(self, p: _Process) -> None:
        log = open(p.log_path, "a")
        p.proc = subprocess.Popen(node_command(p.spec), env=self.env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  preexec_fn=_die_with_parent)
        log.close()

    def supervise(self) -> list[NodeSpec]:
        """Restart processes that died; return the specs that were restarted."""
        restarted = []
        for p in self.processes:
            if p.proc is not None and p.proc.poll() is not None:
                if p.restarts >= MAX_RESTARTS:
                    raise RuntimeError(
                        f"{p.spec.executable} in /{p.spec.namespace} died {p.restarts + 1} "
                        f"times; see {p.log_path}"
                    )
                p.restarts += 1
                self._spawn(p)
                restarted.append(p.spec)
        return restarted

    def pid(self, namespace: str, executable: str) -> int:
        for p in self.processes:
            if p.spec.namespace == namespace and p.spec.executable == executable and p.proc:
                return p.proc.pid
        raise KeyError(f"no {executable} in /{namespace}")

    def stop(self, timeout_s: float = 10.0) -> None:
        for p in self.processes:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for p in self.processes:
            if p.proc is None:
                continue
            try:
                p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.proc.pid, signal.SIGKILL)
                p.proc.wait()


def run_episodes(
    runner: GraphRunner,
    namespaces: list[str],
    episodes: int,
    seed: int = first_episode_seed(0),
    policy: str | PolicyChooser = "",
    timeout_s: float = 300.0,
    progress: bool = True,
    max_lost: int | None = None,
    watch: Callable[[Node], None] | None = None,
    ready: Callable[[], bool] | None = None,
) -> CollectionStats:
    """Send ``episodes`` RunEpisode goals across the cells (one in flight per cell). A goal
    succeeds only once its episode is recorded (episode runner's ``wait_for_recorder``); a
    lost one is rerun, up to ``max_lost`` (default: 10 + episodes / 10) before giving up
    (:class:`~qtopt_collector.episode_driver.EpisodePlan`).
    ``policy`` names every goal's policy, or chooses it per goal; ``watch`` may subscribe the
    driving node to topics its chooser reads (they are spun with the goals); while ``ready``
    says no, no new goal is sent (those in flight finish)."""
    if any(p.spec.executable == DRIVER_EXECUTABLE for p in runner.processes):
        raise ValueError("the graph has an episode driver, which sends its own goals; build "
                         "it without one (CellGraphConfig.driver=None) for the runner")
    context = Context()
    rclpy.init(context=context)
    plan = EpisodePlan(episodes, seed, max_lost)
    try:
        node = rclpy.create_node("qtopt_runner", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        if watch is not None:
            watch(node)
        bar = tqdm(total=episodes, desc="episodes", disable=not progress, unit="ep")

        def on_result(cell: str, result: RunEpisode.Result) -> None:
            bar.update(1)
            bar.set_postfix(success=f"{plan.stats.success_rate:.2f}")

        goals = EpisodeGoals(node, {ns: f"/{ns}/{RUN_EPISODE_ACTION}" for ns in namespaces},
                             plan, policy, timeout_s, on_result)
        deadline = time.monotonic() + timeout_s
        while not goals.servers_ready():
            if time.monotonic() > deadline:
                raise TimeoutError("cells did not come up; see the node logs")
            executor.spin_once(timeout_sec=0.1)
        while not goals.finished:
            goals.send(ready)
            executor.spin_once(timeout_sec=0.05)
            # A restarted device only fails the goal (which is retried); a restarted episode
            # runner takes its goal with it.
            goals.poll(lost={s.namespace for s in runner.supervise()
                             if s.executable == "episode_runner_node"})
        bar.close()
        return plan.stats
    finally:
        rclpy.shutdown(context=context)


def run_graph(specs: list[NodeSpec], namespaces: list[str], episodes: int, log_dir: Path,
              seed: int = first_episode_seed(0), progress: bool = True,
              after_start: Callable[[], None] | None = None,
              before_stop: Callable[[CollectionStats], None] | None = None,
              policy: str | PolicyChooser = "",
              watch: Callable[[Node], None] | None = None,
              ready: Callable[[], bool] | None = None) -> CollectionStats:
    """Start ``specs`` on a leased, loopback-only ROS domain, call ``after_start`` (e.g. to wait
    until a consumer of the episodes is up), run ``episodes`` across the cells in
    ``namespaces`` (``policy``, ``watch`` and ``ready`` as for :func:`run_episodes`), call
    ``before_stop`` (e.g. until that consumer has them all) and stop the graph (node logs
    under ``log_dir``)."""
    with lease_domain_id() as domain_id:
        env = ros_environment(domain_id, log_dir / "ros")
        apply_ros_environment(domain_id, log_dir / "ros")  # this process drives the cells
        runner = GraphRunner(specs, env, log_dir)
        runner.start()
        try:
            if after_start is not None:
                after_start()
            stats = run_episodes(runner, namespaces, episodes, seed=seed, progress=progress,
                                 policy=policy, watch=watch, ready=ready)
            if before_stop is not None:
                before_stop(stats)
            return stats
        finally:
            runner.stop()
