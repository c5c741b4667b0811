"""The Ray engine (Sec. 4.3, App. F): the learner's workers as Ray actors.

The hub is a threaded actor running the very :class:`~qtopt_learner.distributed.hub.LocalHub`
of the in-process engine; log readers, N Bellman updaters and the training worker(s) are actors
that run the same functions as the in-process threads against :class:`RayHub`, a proxy playing
the hub's roles. Several training workers form a torch DDP group (one GPU each when the cluster
has them, gloo on CPU otherwise). A dead updater (crash, kill -9, node loss, ``ray.kill``) is
replaced while training goes on; exported models reach ``on_model`` callbacks in the driver
through the hub's variable source. Started locally, Ray binds to 127.0.0.1 and sends no usage
statistics.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError
from tqdm import tqdm

from qtopt_learner.distributed.engine import make_updater, reader_file_sets
from qtopt_learner.distributed.hooks import ModelCallback, TrainingRecord
from qtopt_learner.distributed.hub import LocalHub
from qtopt_learner.distributed.log_replay import run_log_reader
from qtopt_learner.distributed.roles import TrainerStatus
from qtopt_learner.distributed.training_loop import (
    TrainingLoop,
    TrainingSummary,
    init_training_group,
)
from qtopt_learner.learner_config import LearnerConfig

LOOPBACK = "127.0.0.1"
POLL_S = 0.5


def init_ray(address: str = "", num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a local Ray bound to loopback."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # read at init: nothing is sent
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, _node_ip_address=LOOPBACK, include_dashboard=False,
                 log_to_driver=True)


class RayHub:
    """Client side of the hub actor: every role's methods, called remotely and awaited."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def __getattr__(self, name: str):
        method = getattr(self.handle, name)
        return lambda *args, **kwargs: ray.get(method.remote(*args, **kwargs))


@ray.remote(num_cpus=0, max_concurrency=32)
class HubActor(LocalHub):
    pass


@ray.remote(num_cpus=0)
class LogReaderActor:
    def run(self, files, hub, config: LearnerConfig, index: int) -> dict[str, int]:
        proxy = RayHub(hub)
        return run_log_reader(files, replay=proxy, stop=proxy, config=config.log_replay,
                              index=index)


@ray.remote(num_cpus=1, max_concurrency=2)  # pid() answers while run() runs
class UpdaterActor:
    def __init__(self, config: LearnerConfig, index: int, incarnation: int) -> None:
        self.updater = make_updater(config, index, incarnation)

    def run(self, hub) -> int:
        proxy = RayHub(hub)
        return self.updater.run(replay=proxy, ring=proxy, variables=proxy, stop=proxy)

    def pid(self) -> int:
        """The worker process, for operators and fault drills (kill -9)."""
        return os.getpid()


@ray.remote(num_cpus=1)
class TrainerActor:
    """Training worker ``rank`` of ``world_size``; several form a DDP group (gloo on CPU,
    NCCL on GPUs) before the training loop is built."""

    def __init__(self, config: LearnerConfig, rank: int = 0, world_size: int = 1) -> None:
        self.config, self.rank, self.world_size = config, rank, world_size
        self.loop: TrainingLoop | None = None
        if world_size == 1:
            self.loop = TrainingLoop(config, progress=False)

    def rendezvous(self) -> str:
        """Rank 0's address for the process group: this node's IP and a free port."""
        with socket.socket() as s:
            s.bind((ray.util.get_node_ip_address(), 0))
            host, port = s.getsockname()[:2]
        return f"tcp://{host}:{port}"

    def join_group(self, init_method: str) -> None:
        if init_method.startswith(f"tcp://{LOOPBACK}:"):
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # keep gloo on loopback too
        init_training_group(init_method, self.rank, self.world_size,
                            self.config.resolved_device())
        self.loop = TrainingLoop(self.config, progress=False, rank=self.rank,
                                 world_size=self.world_size)

    def run(self, hub, steps: int | None) -> TrainingSummary:
        return self.loop.run(RayHub(hub), steps)

    def history(self) -> list[TrainingRecord]:
        return self.loop.logger.history

    def resume_info(self) -> tuple[Path | None, int]:
        return self.loop.resumed_from, self.loop.start_step

    def weights_checksum(self) -> float:
        """Sum of Q_bar_1's parameters: equal on every rank of a healthy DDP group."""
        return float(sum(p.double().sum() for p in self.loop.trainer.target_1.parameters()))


class RayLearner:
    """A :class:`~qtopt_learner.distributed.engine.Learner`, as InProcessLearner is."""

    def __init__(self, config: LearnerConfig, progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.updater_restarts = 0
        self.history: list[TrainingRecord] = []
        self._readers: list[Any] = []
        self._updaters: dict[int, tuple[Any, Any, int]] = {}  # index -> (actor, ref, incarnation)
        self._model_callbacks: list[ModelCallback] = []
        self._relayed_version = 0

    def start(self) -> RayLearner:
        # logical CPUs: one per updater and trainer, even where the machine has fewer cores
        init_ray(self.config.ray_address,
                 max(os.cpu_count() or 1, self.config.updaters + self.config.trainers))
        self.hub_handle = HubActor.remote(self.config.hub)
        self.hub = RayHub(self.hub_handle)
        for i, files in enumerate(reader_file_sets(self.config)):
            actor = LogReaderActor.remote()
            self._readers.append((actor, actor.run.remote(files, self.hub_handle, self.config, i)))
        for i in range(self.config.updaters):
            self._start_updater(i, 0)
        self._start_trainers()
        self.resumed_from, self.start_step = ray.get(self.trainer.resume_info.remote())
        self.hub.report_status(TrainerStatus(step=self.start_step))  # see InProcessLearner
        return self

    def _start_trainers(self) -> None:
        n = self.config.trainers
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= n else 0
        self.trainers = [TrainerActor.options(num_gpus=gpus).remote(self.config, rank, n)
                         for rank in range(n)]
        self.trainer = self.trainers[0]
        if n > 1:
            address = ray.get(self.trainer.rendezvous.remote())
            ray.get([t.join_group.remote(address) for t in self.trainers])

    def _start_updater(self, index: int, incarnation: int) -> None:
        actor = UpdaterActor.remote(self.config, index, incarnation)
        self._updaters[index] = (actor, actor.run.remote(self.hub_handle), incarnation)

    def updater_actors(self) -> list[Any]:
        return [actor for actor, _, _ in self._updaters.values()]

    def _supervise(self) -> None:
        """Replace every updater whose actor died."""
        refs = {ref: index for index, (_, ref, _) in self._updaters.items()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in ready:
            index = refs[ref]
            try:
                ray.get(ref)
            except (RayActorError, RayTaskError) as err:
                print(f"[learner] updater-{index} died ({type(err).__name__}); replacing it",
                      flush=True)
            self.updater_restarts += 1
            self._start_updater(index, self._updaters[index][2] + 1)

    def on_model(self, callback: ModelCallback) -> None:
        """``callback`` runs in the thread that called ``train``, within ``POLL_S`` of an
        export (the newest one when several came in between)."""
        self._model_callbacks.append(callback)

    def _relay_model(self) -> None:
        """The trainer actor cannot call into this process: its exports come through the
        hub's variable source."""
        model = self.hub.latest_model()
        if model is not None and model.version > self._relayed_version:
            self._relayed_version = model.version
            for callback in self._model_callbacks:
                callback(model)

    def train(self, steps: int | None = None) -> TrainingSummary:
        target = self.config.steps if steps is None else steps
        result, *others = [t.run.remote(self.hub_handle, target) for t in self.trainers]
        bar = tqdm(total=target, desc="train (ray)", unit="step", disable=not self.progress)
        while not ray.wait([result], timeout=POLL_S)[0]:
            self._supervise()
            self._relay_model()
            bar.update(max(self.hub.variable_stats().published_step - bar.n, 0))
        bar.close()
        summary = ray.get(result)
        self._relay_model()  # the run's last export
        self.worker_summaries = [summary, *ray.get(others)]
        self.history = ray.get(self.trainer.history.remote())
        return summary

    def stop(self) -> None:
        self.hub.stop()
        refs = [ref for _, ref in self._readers] + [ref for _, ref, _ in self._updaters.values()]
        ray.wait(refs, num_returns=len(refs), timeout=30)
        for actor in [a for a, _ in self._readers] + self.updater_actors() + self.trainers + [
                self.hub_handle]:
            ray.kill(actor)

    def __enter__(self) -> RayLearner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
