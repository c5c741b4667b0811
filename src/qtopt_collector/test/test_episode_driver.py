"""The episode driver: which seeds the goals get and when a lost episode is rerun (the plan
the runner and the driver node share), and the driver node against a RunEpisode server."""

from __future__ import annotations

import threading
import time

import pytest

from qtopt_collector.episode_driver import EpisodeDriverConfig, EpisodePlan, first_episode_seed
from qtopt_policy.names import SEEDS_PER_RUN


def _send_all(plan: EpisodePlan) -> list[int]:
    seeds = []
    while plan.has_next():
        seeds.append(plan.next_seed())
    return seeds


def test_a_plan_sends_one_seed_per_episode_and_reruns_a_lost_one_under_a_fresh_seed():
    plan = EpisodePlan(3, seed=10)
    assert [plan.next_seed(), plan.next_seed()] == [10, 11]
    plan.lose()  # the episode of seed 10 or 11 is lost: 13 replaces it, before 12
    assert _send_all(plan) == [13, 12]
    for seed in (11, 13, 12):
        plan.record(f"ep{seed}", seed % 2 == 1, 1.0, 5)
    assert (plan.stats.episodes, plan.stats.successes, plan.stats.retried) == (3, 2, 1)
    assert plan.progress() == "3/3 episodes, success 0.67, 1 lost and rerun"


def test_an_endless_plan_runs_until_stopped_and_its_loss_budget_grows():
    assert not EpisodePlan(0).has_next()  # the runner's "nothing left to collect"
    plan = EpisodePlan(None, seed=5)
    assert [plan.next_seed() for _ in range(3)] == [5, 6, 7]
    for _ in range(10):
        plan.lose()  # 10 losses are allowed with nothing collected yet ...
    with pytest.raises(RuntimeError, match="11 episodes lost"):
        plan.lose()  # ... the 11th is one too many
    plan = EpisodePlan(None)
    for i in range(30):
        plan.record(f"ep{i}", True, 1.0, 3)
    for _ in range(13):  # 10 + 30 / 10
        plan.lose()
    assert plan.has_next()
    plan.stop()
    assert not plan.has_next() and plan.progress().startswith("30 episodes")


def test_the_loss_budget_is_the_runners_and_can_be_set():
    plan = EpisodePlan(50, max_lost=1)
    plan.lose()
    with pytest.raises(RuntimeError, match="2 episodes lost"):
        plan.lose()
    default = EpisodePlan(50)
    for _ in range(15):  # 10 + 50 / 10
        default.lose()
    with pytest.raises(RuntimeError):
        default.lose()


def test_bad_driver_configs_are_named():
    with pytest.raises(ValueError, match="episodes -1: expected >= 0"):
        EpisodeDriverConfig(episodes=-1)
    with pytest.raises(ValueError, match="seed -1: expected >= 0"):
        EpisodeDriverConfig(seed=-1)
    with pytest.raises(ValueError, match="timeout_s 0: expected > 0"):
        EpisodeDriverConfig(timeout_s=0)
    with pytest.raises(ValueError, match="actions"):
        EpisodeDriverConfig(actions=())


def test_no_episode_gets_seed_0_which_a_cell_randomizes():
    """Run seed k's episodes take seeds k * SEEDS_PER_RUN + 1 on: run seed 0's start at 1."""
    assert [first_episode_seed(k) for k in (0, 1, 3)] == [1, SEEDS_PER_RUN + 1,
                                                          3 * SEEDS_PER_RUN + 1]
    assert _send_all(EpisodePlan(2)) == [1, 2]
    with pytest.raises(ValueError, match="seed 0: expected >= 1"):
        EpisodePlan(2, seed=0)


@pytest.mark.ros
def test_the_driver_node_reruns_an_aborted_episode_and_exits_when_done(ros_domain):
    """Against an in-process RunEpisode server that aborts its first goal: the driver sends
    one goal at a time per cell, reruns the aborted episode under a fresh seed, and shuts its
    executor down (main() returns) once the episodes are in."""
    import rclpy
    from rclpy.action import ActionServer
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from qtopt_collector.episode_driver_node import EpisodeDriverNode
    from qtopt_msgs.action import RunEpisode

    seeds: list[tuple[str, int]] = []
    busy: set[str] = set()
    overlap: list[str] = []
    lock = threading.Lock()

    def execute(cell: str):
        def run(goal_handle):
            with lock:
                if cell in busy:
                    overlap.append(cell)
                busy.add(cell)
                seeds.append((cell, goal_handle.request.seed))
                first = len(seeds) == 1
            time.sleep(0.05)
            with lock:
                busy.discard(cell)
            result = RunEpisode.Result(episode_id=f"{cell}-{goal_handle.request.seed}",
                                       success=True, steps=4)
            if first:
                goal_handle.abort()
            else:
                goal_handle.succeed()
            return result
        return run

    context = Context()
    rclpy.init(context=context)
    try:
        server = rclpy.create_node("fake_cells", context=context)
        servers = [ActionServer(server, RunEpisode, f"/{cell}/run_episode", execute(cell))
                   for cell in ("cell0", "cell1")]
        driver = EpisodeDriverNode(context=context, parameter_overrides=[
            Parameter("episodes", value=5), Parameter("seed", value=100),
            Parameter("actions", value=["/cell0/run_episode", "/cell1/run_episode"]),
            Parameter("timeout_s", value=30.0)])
        executor = MultiThreadedExecutor(num_threads=4, context=context)
        executor.add_node(server)
        executor.add_node(driver)
        deadline = time.monotonic() + 60
        while not driver.finished and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert driver.finished, "the driver did not finish"
        assert driver.error == ""
        stats = driver.plan.stats
        assert (stats.episodes, stats.retried) == (5, 1)
        first = first_episode_seed(100)  # the run seed's first episode
        assert sorted(s for _, s in seeds) == list(range(first, first + 6))  # + 5: the rerun
        assert {c for c, _ in seeds} == {"cell0", "cell1"} and not overlap
        del servers
    finally:
        rclpy.try_shutdown(context=context)


@pytest.mark.ros
def test_an_episode_past_its_timeout_is_cancelled_and_run_again(ros_domain):
    """A goal given up after ``timeout_s`` is cancelled on its cell, which would otherwise hold
    it beside the goal sent in its place."""
    import rclpy
    from rclpy.action import ActionServer, CancelResponse
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor

    from qtopt_collector.ros.episode_goals import EpisodeGoals
    from qtopt_msgs.action import RunEpisode

    cancelled: list[int] = []
    stop = threading.Event()

    def execute(goal_handle):  # an episode that never ends by itself
        while not (goal_handle.is_cancel_requested or stop.is_set()):
            time.sleep(0.01)
        if goal_handle.is_cancel_requested:
            cancelled.append(goal_handle.request.seed)
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return RunEpisode.Result()

    context = Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    try:
        cell = rclpy.create_node("stuck_cell", context=context)
        server = ActionServer(cell, RunEpisode, "/cell0/run_episode", execute,
                              cancel_callback=lambda _: CancelResponse.ACCEPT,
                              callback_group=ReentrantCallbackGroup())
        driver = rclpy.create_node("goals", context=context)
        plan = EpisodePlan(1, seed=10)
        goals = EpisodeGoals(driver, {"cell0": "/cell0/run_episode"}, plan, timeout_s=0.5)
        executor.add_node(cell)
        executor.add_node(driver)
        deadline = time.monotonic() + 30
        while not cancelled and time.monotonic() < deadline:
            goals.send()
            executor.spin_once(timeout_sec=0.05)
            goals.poll()
        assert cancelled == [10]
        assert plan.stats.retried >= 1 and goals.sent >= 2  # seed 11 went out in its place
        del server
    finally:
        stop.set()
        executor.shutdown()
        rclpy.try_shutdown(context=context)
