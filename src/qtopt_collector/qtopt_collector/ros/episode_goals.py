"""Send ``RunEpisode`` goals to cells, one in flight per cell, following an
:class:`~qtopt_collector.episode_driver.EpisodePlan`: the goal logic of the project's runner
(:func:`qtopt_collector.ros.runner.run_episodes`) and of the episode driver node.

The caller spins the node between :meth:`EpisodeGoals.send` and :meth:`EpisodeGoals.poll` and
says which cells lost their episode in flight (a restarted process); an episode that outlives
``timeout_s`` is lost too. A goal succeeds only once its episode is recorded (the episode
runner's ``wait_for_recorder``), so a lost episode never leaves half an episode in a bag.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.node import Node

from qtopt_collector.episode_driver import EpisodePlan
from qtopt_msgs.action import RunEpisode

# Chooses the policy of each goal from its index in the run ("" keeps the cell's own).
PolicyChooser = Callable[[int], str]


@dataclass
class _Flight:
    """One RunEpisode goal on its way: the goal future, then the result future."""

    goal_future: Any
    started: float = field(default_factory=time.monotonic)
    result_future: Any = None

    def poll(self) -> Any:
        """None while running, "aborted" when the goal failed, else the goal's result."""
        if not self.goal_future.done():
            return None
        handle = self.goal_future.result()
        if handle is None or not handle.accepted:
            return "aborted"
        if self.result_future is None:
            self.result_future = handle.get_result_async()
        if not self.result_future.done():
            return None
        response = self.result_future.result()
        if response is None or response.status != GoalStatus.STATUS_SUCCEEDED:
            return "aborted"
        return response.result

    def cancel(self) -> None:
        """Ask the cell to cancel the goal (now, or once it is accepted): it is given up, and
        its cell gets the next one."""
        def cancel(future: Any) -> None:
            handle = future.result()
            if handle is not None and handle.accepted:
                handle.cancel_goal_async()

        self.goal_future.add_done_callback(cancel)


class EpisodeGoals:
    """The cells' ``RunEpisode`` action clients on ``node``, ``actions`` mapping a cell's label
    to its action name; ``policy`` names every goal's policy or chooses it per goal;
    ``on_result(cell, result)`` hears of every collected episode."""

    def __init__(self, node: Node, actions: Mapping[str, str], plan: EpisodePlan,
                 policy: str | PolicyChooser = "", timeout_s: float = 300.0,
                 on_result: Callable[[str, RunEpisode.Result], None] | None = None) -> None:
        self.plan = plan
        self.timeout_s = timeout_s
        self.on_result = on_result
        self._choose = policy if callable(policy) else lambda _: policy
        self.clients = {cell: ActionClient(node, RunEpisode, name)
                        for cell, name in actions.items()}
        self.in_flight: dict[str, _Flight] = {}
        self.sent = 0

    def servers_ready(self) -> bool:
        return all(c.server_is_ready() for c in self.clients.values())

    def unavailable(self) -> set[str]:
        """Cells whose action server is not on the graph (not up yet, or its process died)."""
        return {cell for cell, c in self.clients.items() if not c.server_is_ready()}

    @property
    def finished(self) -> bool:
        return not self.plan.has_next() and not self.in_flight

    def send(self, ready: Callable[[], bool] | None = None) -> None:
        """A goal to every idle cell while the plan has episodes and ``ready`` says yes. A cell
        whose server is not up gets none: a goal sent before its server exists is never
        delivered (requests do not wait for late servers)."""
        for cell, client in self.clients.items():
            if cell not in self.in_flight and self.plan.has_next() and (
                    ready is None or ready()) and client.server_is_ready():
                goal = RunEpisode.Goal(policy=self._choose(self.sent),
                                       seed=self.plan.next_seed())
                self.sent += 1
                self.in_flight[cell] = _Flight(client.send_goal_async(goal))

    def poll(self, lost: Collection[str] = ()) -> None:
        """Collect finished goals; the episodes in flight on ``lost`` cells, aborted ones and
        those older than ``timeout_s`` are lost and planned again (RuntimeError once the plan
        has lost too many)."""
        for cell, flight in list(self.in_flight.items()):
            gone = cell in lost or time.monotonic() - flight.started > self.timeout_s
            outcome = flight.poll()
            if outcome is None and not gone:
                continue
            del self.in_flight[cell]
            if outcome is None:  # given up while running: the cell must not hold it on
                flight.cancel()
            if outcome is None or outcome == "aborted":
                self.plan.lose()  # the episode in flight is lost; run another
                continue
            self.plan.record(outcome.episode_id, outcome.success, outcome.total_reward,
                             outcome.steps)
            if self.on_result is not None:
                self.on_result(cell, outcome)
