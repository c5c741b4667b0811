"""Grasp-success evaluation in the simulated cell (Kalashnikov et al. 2018, Sec. 6.1) of any
:class:`~qtopt_policy.policies.Policy`, on held-out test objects.

Protocol 1, grasps with replacement: each attempt is one episode on a freshly seeded bin;
success is the simulator's ground truth (an object held above the success height), reported
with a 95 % Wilson interval, next to the image-subtraction label's rate. Protocol 2, bin
emptying: attempts without replacement from one bin, success over the first 10/20/30. Workers
are separate processes, each with its own PyBullet world, building the policy from a
:class:`~qtopt_policy.policies.PolicySource`; a Policy object runs in this process. A model that
records the camera it was trained with is evaluated only in a cell with the same camera.

Given an :class:`AttemptLog`, finished attempts are kept on disk as they finish and an
interrupted evaluation continues from them: an attempt depends only on the policy and its seed
(the cell and the policy are reseeded per attempt), so only the missing seeds run. A bin is
one unit: its attempts depend on the objects the earlier ones left.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from qtopt_collector.episode import EpisodeConfig, GraspLabel, run_episode
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_policy.episode_record import EpisodeRecord
from qtopt_policy.policies import Policy, PolicySource, local_policy
from qtopt_policy.spec import Action, ActionBounds, Observation
from qtopt_policy.torchscript_model import load_model

# First seeds of the protocols' attempts (the same for every policy) and of the scripted
# probe episodes, apart from each other
GRASP_SEED, BIN_SEED, PROBE_SEED = 100_000, 200_000, 400_000


@dataclass(frozen=True)
class Attempt:
    """One finished evaluation attempt."""

    seed: int
    success: bool  # simulator ground truth
    labeled: bool  # image subtraction
    steps: int


@dataclass(frozen=True)
class AttemptLog:
    """Finished attempts as append-only JSON lines, each under the key of its evaluation
    (:func:`attempt_key`). Each :meth:`append` is one ``write`` to a file opened for appending,
    then fsynced (and the folder too when it creates the file, so the file survives a power
    cut), so workers share the file without interleaving and a kill loses at most the attempt
    in flight; :meth:`load` drops a line that a crash cut short."""

    path: Path

    def append(self, key: str, attempts: Sequence[Attempt]) -> None:
        data = "".join(json.dumps({"key": key, **dataclasses.asdict(a)}) + "\n"
                       for a in attempts).encode()
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)

    def load(self, key: str) -> dict[int, Attempt]:
        """The attempts logged under ``key``, by seed (the latest line wins). Call it while
        nobody appends: it first cuts a torn last line, so the next append starts a line."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        whole = data[:data.rfind(b"\n") + 1]
        if len(whole) < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(len(whole))
                os.fsync(f.fileno())
        attempts = {}
        for line in whole.decode().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # torn, then appended to: its attempt runs again
                continue
            if row.pop("key") == key:
                attempts[row["seed"]] = Attempt(**row)
        return attempts


def attempt_key(protocol: str, policy: PolicySource, cell_config: SimCellConfig,
                episode_config: EpisodeConfig) -> str:
    """What the attempts of one evaluation share: the protocol, the policy (a model by its
    file's content, so attempts of two model files never mix, wherever the file lies) and the
    cell and episode settings."""
    identity = policy.local or "sha256:" + hashlib.sha256(
        Path(policy.model_path).read_bytes()).hexdigest()[:16]
    setup = hashlib.sha256(repr((cell_config, episode_config)).encode()).hexdigest()[:12]
    return f"{protocol} {identity} setup:{setup}"


def unfinished(units: Sequence[Sequence[int]], done: Collection[int]) -> list[list[int]]:
    """The units (seed lists run as a whole: one attempt, or a bin) not all of whose seeds are
    ``done``."""
    done = set(done)
    return [list(unit) for unit in units if not done.issuperset(unit)]


@dataclass(frozen=True)
class EvalResult:
    policy: str
    attempts: int
    successes: int  # simulator ground truth
    labeled_successes: int  # image subtraction (what a real cell would report)
    mean_steps: float

    @property
    def rate(self) -> float:
        return self.successes / max(self.attempts, 1)

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.attempts)

    @classmethod
    def of(cls, policy: str, attempts: Sequence[Attempt]) -> EvalResult:
        return cls(policy, len(attempts), sum(a.success for a in attempts),
                   sum(a.labeled for a in attempts),
                   sum(a.steps for a in attempts) / max(len(attempts), 1))

    def summary(self) -> str:
        low, high = self.interval
        return (f"{self.policy}: {self.successes}/{self.attempts} = {self.rate:.1%} "
                f"(95 % CI {low:.1%}-{high:.1%}), labeled {self.labeled_successes}, "
                f"{self.mean_steps:.1f} steps/episode")


def wilson_interval(successes: int, attempts: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial rate."""
    if attempts == 0:
        return 0.0, 1.0
    p = successes / attempts
    denom = 1 + z * z / attempts
    centre = (p + z * z / (2 * attempts)) / denom
    half = z * math.sqrt(p * (1 - p) / attempts + z * z / (4 * attempts * attempts)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float, float]:
    """p1 - p2 of two independent rates and its 95 % interval: Newcombe's hybrid score
    interval (Newcombe 1998, method 10), built from the two Wilson intervals; it keeps its
    coverage near 95 % at the rates and counts of Sec. 6.1's comparisons, where the Wald
    interval of the difference does not."""
    p1, p2 = s1 / max(n1, 1), s2 / max(n2, 1)
    (l1, u1), (l2, u2) = wilson_interval(s1, n1), wilson_interval(s2, n2)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


EvaluatedPolicy = Policy | PolicySource


def check_camera(policy: EvaluatedPolicy, cell_config: SimCellConfig) -> None:
    """Raise ValueError when ``policy``'s model records a training camera other than the
    cell's: the Q-network learned from that view's pixels (Sec. 5), so its grasp rate in another
    view measures the mismatch, not the policy. Local policies, Policy objects (their maker
    checks) and models without a recorded camera (older files) pass."""
    if not isinstance(policy, PolicySource) or not policy.model_path:
        return
    trained, cell = load_model(policy.model_path).metadata.camera, cell_config.camera()
    if trained is not None and trained != cell:
        raise ValueError(
            f"model {policy.model_path} was trained with camera {trained.describe()} but the "
            f"cell's camera is {cell.describe()}: expected the same camera (set the cell's "
            "camera_* fields or evaluate a matching model)"
        )


class BinEmptyingCell:
    """Protocol 2 (Sec. 6.1): attempts without replacement. The first attempt fills the bin
    with ``objects`` objects; every later one starts in the bin as the last left it. A grasped
    object is lifted and put aside instead of dropped back (the ground truth is the label)."""

    def __init__(self, cell: SimCell, objects: int) -> None:
        self.cell = cell
        self.objects = objects
        self.filled = False

    @property
    def object_ids(self) -> list[str]:
        return self.cell.object_ids

    def reset(self, seed: int) -> Observation:
        if self.filled:
            return self.cell.restart()
        self.filled = True
        return self.cell.reset(seed, objects=self.objects)

    def execute(self, action: Action) -> None:
        self.cell.execute(action)

    def observe(self) -> Observation:
        return self.cell.observe()

    def label_grasp(self) -> GraspLabel:
        self.cell.lift()
        held = bool(self.cell.remove_held_objects())
        return GraspLabel(held, held)


@dataclass(frozen=True)
class _Task:
    policy: EvaluatedPolicy
    cell_config: SimCellConfig
    episode_config: EpisodeConfig
    seeds: list[int]
    progress: bool
    bin_objects: int = 0  # > 0: one bin emptied over the seeds' attempts (protocol 2)
    log: AttemptLog | None = None  # where finished attempts go, under ``key``
    key: str = ""


def _attempts(task: _Task) -> list[Attempt]:
    """The attempts of ``task``, in seed order, each logged as it finishes (a bin's all at
    once when it is empty: a part of a bin cannot be continued)."""
    torch.set_num_threads(1)
    sim = SimCell(task.cell_config)
    cell = BinEmptyingCell(sim, task.bin_objects) if task.bin_objects else sim
    policy = task.policy.make(seed=task.seeds[0] if task.seeds else 0) \
        if isinstance(task.policy, PolicySource) else task.policy
    name = task.policy.local or "model" if isinstance(task.policy, PolicySource) else "policy"
    out = []
    try:
        for seed in tqdm(task.seeds, desc=f"eval {name}", disable=not task.progress,
                         leave=False):
            ep = run_episode(cell, policy, seed, task.episode_config)
            out.append(Attempt(seed, bool(ep.ground_truth), bool(ep.success), len(ep.steps)))
            if task.log is not None and not task.bin_objects:
                task.log.append(task.key, out[-1:])
    finally:
        sim.close()
    if task.log is not None and task.bin_objects:
        task.log.append(task.key, out)
    return out


def _run(tasks: list[_Task], workers: int) -> list[list[Attempt]]:
    if workers == 1 or len(tasks) <= 1:
        return [_attempts(t) for t in tasks]
    if not isinstance(tasks[0].policy, PolicySource):
        raise ValueError(f"workers {workers} with a Policy object: expected workers 1, or a "
                         "PolicySource that each worker builds")
    with multiprocessing.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
        return pool.map(_attempts, tasks)


def _logged(log: AttemptLog | None, protocol: str, policy: EvaluatedPolicy,
            cell_config: SimCellConfig, episode_config: EpisodeConfig
            ) -> tuple[str, dict[int, Attempt]]:
    """The key of this evaluation in ``log`` and the attempts already there."""
    if log is None:
        return "", {}
    if not isinstance(policy, PolicySource):
        raise ValueError("an attempt log with a Policy object: expected a PolicySource, whose "
                         "identity keys the logged attempts")
    key = attempt_key(protocol, policy, cell_config, episode_config)
    return key, log.load(key)


def evaluate(policy: EvaluatedPolicy, attempts: int, seed: int = GRASP_SEED,
             objects: str = "test", workers: int = 1, cell_config: SimCellConfig = SimCellConfig(),
             episode_config: EpisodeConfig = EpisodeConfig(),
             progress: bool = True, log: AttemptLog | None = None) -> EvalResult:
    """Protocol 1: ``attempts`` grasps with replacement (seeds ``seed``..``seed + attempts -
    1``, each a freshly seeded bin). With a ``log``, attempts found there are not run again
    and those run are added as they finish."""
    check_camera(policy, cell_config)
    cell_config = dataclasses.replace(cell_config, object_split=objects)
    seeds = list(range(seed, seed + attempts))
    key, done = _logged(log, "grasps", policy, cell_config, episode_config)
    todo = [s for (s,) in unfinished([[s] for s in seeds], done)]
    tasks = [_Task(policy, cell_config, episode_config, todo[i::workers], progress and i == 0,
                   log=log, key=key) for i in range(workers) if todo[i::workers]]
    rows = done | {a.seed: a for part in _run(tasks, workers) for a in part}
    return EvalResult.of(policy.name, [rows[s] for s in seeds])


@dataclass(frozen=True)
class BinEmptyingResult:
    policy: str
    objects: int
    outcomes: tuple[tuple[bool, ...], ...]  # per bin, per attempt in order

    def rate_first(self, n: int) -> float:
        """Success over the first ``n`` attempts, averaged over bins (Sec. 6.1)."""
        return sum(sum(b[:n]) for b in self.outcomes) / max(n * len(self.outcomes), 1)

    @property
    def checkpoints(self) -> list[int]:
        attempts = min((len(b) for b in self.outcomes), default=0)
        return [n for n in (10, 20, 30) if n <= attempts] or [attempts]

    def summary(self) -> str:
        rates = ", ".join(f"first {n}: {self.rate_first(n):.0%}" for n in self.checkpoints)
        return (f"{self.policy}: bin emptying, {len(self.outcomes)} bin(s) of {self.objects} "
                f"objects: {rates}")


def bin_protocol(objects: int, attempts: int) -> str:
    """The protocol part of the attempt key of bins of ``objects`` objects emptied over
    ``attempts`` attempts each: bin b takes the seeds from ``seed + b * attempts`` on, so with
    another number of attempts the same seeds belong to other bins and must not count."""
    return f"bin_emptying {objects} objects {attempts} attempts"


def bin_emptying(policy: EvaluatedPolicy, objects: int = 28, attempts: int = 30, bins: int = 1,
                 seed: int = BIN_SEED, workers: int = 1,
                 cell_config: SimCellConfig = SimCellConfig(),
                 episode_config: EpisodeConfig = EpisodeConfig(),
                 progress: bool = True, log: AttemptLog | None = None) -> BinEmptyingResult:
    """Protocol 2: ``bins`` bins of ``objects`` test objects, ``attempts`` grasps each without
    replacement (the paper: 28 objects, 30 attempts; success over the first 10/20/30). With a
    ``log``, bins found whole there are not run again and each bin run is added once empty."""
    check_camera(policy, cell_config)
    cell_config = dataclasses.replace(cell_config, object_split="test")
    units = [list(range(seed + b * attempts, seed + (b + 1) * attempts)) for b in range(bins)]
    key, done = _logged(log, bin_protocol(objects, attempts), policy, cell_config,
                        episode_config)
    tasks = [_Task(policy, cell_config, episode_config, unit, progress and b == 0,
                   bin_objects=objects, log=log, key=key)
             for b, unit in enumerate(unfinished(units, done))]
    rows = done | {a.seed: a for part in _run(tasks, workers) for a in part}
    return BinEmptyingResult(policy.name, objects,
                             tuple(tuple(rows[s].success for s in unit) for unit in units))


def scripted_episodes(cell_config: SimCellConfig, episode_config: EpisodeConfig,
                      episodes: int, seed: int = PROBE_SEED) -> list[EpisodeRecord]:
    """``episodes`` pi_scripted episodes in process (each closes, then lifts), whose states
    probes of a Q-function score."""
    cell = SimCell(cell_config)
    try:
        return [run_episode(cell, local_policy("scripted", ActionBounds(), seed + k), seed + k,
                            episode_config) for k in range(episodes)]
    finally:
        cell.close()
