"""episode_driver_node: makes a launched cell graph collect on its own (App. C).

Sends ``RunEpisode`` goals to every cell's episode runner, one in flight per cell, until
``episodes`` episodes are collected (0: until stopped), with the project runner's goal logic
(:class:`~qtopt_collector.ros.episode_goals.EpisodeGoals` over an
:class:`~qtopt_collector.episode_driver.EpisodePlan`): the episodes of run seed ``seed`` take
seeds ``seed * SEEDS_PER_RUN + 1``, ``+ 2``, ... (:mod:`qtopt_policy.names`); an
aborted episode, one that outlives ``timeout_s`` or one whose cell's episode runner went away
is run again under a fresh seed. It logs every episode and exits when done (0), or when it
gives up (1: the cells did not come up, or too many episodes were lost). Ctrl-C stops sending;
the episodes in flight are either recorded whole or not at all (the recorder writes only
complete episodes). Parameters mirror
:class:`~qtopt_collector.episode_driver.EpisodeDriverConfig`::

    ros2 run qtopt_collector episode_driver_node --ros-args -p episodes:=100 \\
        -p "actions:=[/cell0/run_episode, /cell1/run_episode]"
"""

from __future__ import annotations

import sys
import time

from rclpy.node import Node

from qtopt_collector.episode_driver import EpisodeDriverConfig, EpisodePlan, first_episode_seed
from qtopt_collector.ros.episode_goals import EpisodeGoals
from qtopt_msgs.action import RunEpisode
from qtopt_policy.ros.node_main import spin_nodes
from qtopt_policy.ros_params import declare_config

TICK_S = 0.05  # how often goals are sent and results collected
# A cell's server missing this long with a goal in flight: its episode runner died with it.
SERVER_GONE_S = 2.0


class EpisodeDriverNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("episode_driver", **kwargs)
        self.config = declare_config(self, EpisodeDriverConfig)
        c = self.config
        self.plan = EpisodePlan(c.episodes or None,  # 0: until stopped
                                first_episode_seed(c.seed),
                                c.max_lost if c.max_lost >= 0 else None)
        self.goals = EpisodeGoals(self, {a: a for a in c.actions}, self.plan, c.policy,
                                  c.timeout_s, self._on_result)
        self.error = ""  # why it gave up
        self.finished = False  # done, or given up
        self._started = time.monotonic()
        self._up = False
        self._missing_since: dict[str, float] = {}
        self._timer = self.create_timer(TICK_S, self._tick)

    def _on_result(self, cell: str, result: RunEpisode.Result) -> None:
        outcome = "success" if result.success else "failure"
        self.get_logger().info(f"{cell}: {result.episode_id} {outcome} in {result.steps} "
                               f"steps; {self.plan.progress()}")

    def _lost_cells(self) -> set[str]:
        """Cells whose server has been gone for SERVER_GONE_S (a blip is not a loss)."""
        now = time.monotonic()
        missing = self.goals.unavailable()
        self._missing_since = {c: self._missing_since.get(c, now) for c in missing}
        return {c for c, since in self._missing_since.items() if now - since > SERVER_GONE_S}

    def _tick(self) -> None:
        try:
            if not self._up:
                self._wait_for_cells()
                if not self._up:
                    return
            self.goals.send()
            self.goals.poll(lost=self._lost_cells())
        except (RuntimeError, TimeoutError) as err:
            self.error = str(err)
            self.get_logger().error(f"giving up: {err}")
            self._finish()
            return
        if self.goals.finished:
            self.get_logger().info(f"done: {self.plan.progress()}")
            self._finish()

    def _wait_for_cells(self) -> None:
        if self.goals.servers_ready():
            self._up = True
            total = "until stopped" if self.plan.endless else f"{self.plan.episodes} episodes"
            self.get_logger().info(f"collecting {total} on {len(self.goals.clients)} cells: "
                                   f"{', '.join(self.config.actions)}")
        elif time.monotonic() - self._started > self.config.timeout_s:
            missing = ", ".join(sorted(self.goals.unavailable()))
            raise TimeoutError(f"cells did not come up within {self.config.timeout_s:.0f} s: "
                               f"no {missing}")

    def _finish(self) -> None:
        """Stop: the executor's spin returns, and main() with it."""
        self._timer.cancel()
        self.finished = True
        # Shutting the executor down, not the context, from inside its callback: the context's
        # shutdown left the executor's signal guard to be destroyed twice (a noisy exit).
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=0.0)


def main(args: list[str] | None = None) -> int:
    nodes: list[EpisodeDriverNode] = []

    def make_nodes() -> list[Node]:
        nodes.append(EpisodeDriverNode())
        return list(nodes)

    code = spin_nodes(make_nodes, args=args)
    return 1 if nodes and nodes[0].error else code


if __name__ == "__main__":
    sys.exit(main())
