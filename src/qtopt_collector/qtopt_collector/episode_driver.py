"""Which episodes a fleet of cells collects: the seed of every ``RunEpisode`` goal, the retry of
lost episodes, and when collection is over (App. C: many cells collecting in parallel).

The plain core shared by the project's runner (:func:`qtopt_collector.ros.runner.run_episodes`)
and the episode driver node (``episode_driver_node``, which ``ros2 launch`` starts); the goals
themselves go out through :class:`qtopt_collector.ros.episode_goals.EpisodeGoals`. An episode is
lost when its cell aborts it or dies with it (the recorder writes only whole episodes, so
nothing of it reaches a bag); it is run again under a fresh seed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.names import SEEDS_PER_RUN
from qtopt_policy.ros_names import RUN_EPISODE_ACTION


def first_episode_seed(run_seed: int) -> int:
    """The seed of the first episode of run seed ``run_seed`` (names.SEEDS_PER_RUN's rule)."""
    return run_seed * SEEDS_PER_RUN + 1


@dataclass(frozen=True)
class EpisodeDriverConfig:
    """The episode driver node's parameters."""

    # episodes to collect across the cells; 0: until stopped (Ctrl-C)
    episodes: int = bounded(0, ge=0)
    # The run's seed: the episodes take seeds seed * SEEDS_PER_RUN + 1, + 2, ...
    # (qtopt_policy.names), so launches into one folder with their own seeds share no episode.
    seed: int = bounded(0, ge=0)
    # One RunEpisode action per cell; each has one goal in flight at a time.
    actions: tuple[str, ...] = (f"/cell0/{RUN_EPISODE_ACTION}",)
    policy: str = ""  # every goal's policy; "" keeps each cell's own
    # seconds for the cells to come up, and for one episode before it is lost
    timeout_s: float = bounded(300.0, gt=0)
    # Lost episodes before giving up; negative: 10 plus a tenth of the episodes (of those
    # collected so far when collecting until stopped).
    max_lost: int = -1

    def __post_init__(self) -> None:
        check_bounds(self)
        if not self.actions:
            raise ValueError("actions: expected at least one RunEpisode action")


@dataclass
class CollectionStats:
    episodes: int = 0
    successes: int = 0
    steps: int = 0
    retried: int = 0
    results: list[tuple[str, bool, float, int]] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0


class EpisodePlan:
    """``episodes`` episodes with seeds ``seed``, ``seed + 1``, ...; a lost one is rerun under
    the next unused seed (``seed + episodes`` onwards), so no seed is collected twice.
    ``episodes=None`` plans seeds without end until :meth:`stop`. Losing more than
    ``max_lost`` episodes (None: 10 plus a tenth of the episodes, of those collected so far
    when endless) raises RuntimeError. ``seed`` is a first episode's, at least 1
    (:func:`first_episode_seed`)."""

    def __init__(self, episodes: int | None, seed: int = first_episode_seed(0),
                 max_lost: int | None = None) -> None:
        if episodes is not None and episodes < 0:
            raise ValueError(f"episodes {episodes}: expected >= 0")
        if seed < 1:
            raise ValueError(f"seed {seed}: expected >= 1 (a goal's seed 0 asks the cell for "
                             "a random one)")
        self.episodes = episodes
        self.max_lost = max_lost
        self.stats = CollectionStats()
        self._pending = deque(seed + i for i in range(episodes or 0))
        self._fresh = seed + (episodes or 0)
        self._stopped = False

    @property
    def endless(self) -> bool:
        return self.episodes is None

    def has_next(self) -> bool:
        return bool(self._pending) or (self.endless and not self._stopped)

    def next_seed(self) -> int:
        if self._pending:
            return self._pending.popleft()
        if not self.has_next():
            raise RuntimeError("no episode left to send")
        self._fresh += 1
        return self._fresh - 1

    def stop(self) -> None:
        """Send no new episode (those in flight still finish): the end of an endless plan."""
        self._stopped = True
        self._pending.clear()

    def lose(self) -> None:
        """The episode in flight on some cell is lost: plan another in its place."""
        self.stats.retried += 1
        planned = self.stats.episodes if self.episodes is None else self.episodes
        budget = self.max_lost if self.max_lost is not None else 10 + planned // 10
        if self.stats.retried > budget:
            raise RuntimeError(f"{self.stats.retried} episodes lost; see the node logs")
        if not self.endless and not self._stopped:
            self._pending.appendleft(self._fresh)
            self._fresh += 1

    def record(self, episode_id: str, success: bool, total_reward: float, steps: int) -> None:
        """An episode is collected (recorded, when its cell waits for the recorder)."""
        s = self.stats
        s.episodes += 1
        s.successes += int(success)
        s.steps += steps
        s.results.append((episode_id, success, total_reward, steps))

    def progress(self) -> str:
        """``"3/10 episodes, success 0.33"`` (``"3 episodes, ..."`` when endless)."""
        total = "" if self.endless else f"/{self.episodes}"
        lost = f", {self.stats.retried} lost and rerun" if self.stats.retried else ""
        return (f"{self.stats.episodes}{total} episodes, success "
                f"{self.stats.success_rate:.2f}{lost}")
