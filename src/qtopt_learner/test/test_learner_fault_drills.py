"""Fault drills of the learner: kill -9 of the learner node and of a training run mid-checkpoint,
each at three seeded random instants, restarting after each.

After every kill: each visible checkpoint is whole, the learner's bags read (the project's
reader and an independent ``mcap`` read) with every episode it had received and at most the one
in flight beyond them; after the restart, training resumes at the newest checkpoint's step (not
0) with every persisted episode reloaded. The cell graph's drills (sim cell, recorder, policy
node) are in test/test_fault_drills.py, the Ray updater's in test_ray_engine.py.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import read_bags_both_ways
from qtopt_collector.bag_recorder import read_episodes
from qtopt_learner.distributed.checkpoint import checkpoints
from qtopt_msgs.msg import TrainingStatus
from qtopt_policy.ros.transport_check import stop_process
from qtopt_policy.torchscript_model import load_model

from .chain_mdp import episodes, write_bags
from .test_learner_node import Observer, start_learner_node

pytestmark = pytest.mark.slow

KILLS = 3
EVERY = 5  # steps between checkpoints
WRITE_S = 1.0  # how long a slowed checkpoint write keeps its temporary file
# A training run whose checkpoint writer sleeps WRITE_S (argv[1]) before it fsyncs the written
# temporary file and renames it, so that a kill can be aimed inside the write.
SLOW_CHECKPOINTS = """
import os, runpy, sys, time, types
from qtopt_learner.distributed import checkpoint

delay_s = float(sys.argv[1])

def fsync(fd):
    time.sleep(delay_s)
    os.fsync(fd)

checkpoint.os = types.SimpleNamespace(**{**vars(os), "fsync": fsync})
sys.argv = ["qtopt", *sys.argv[2:]]
runpy.run_module("qtopt_learner.app.cli", run_name="__main__")
"""


def _train(bags: Path, run: Path, steps: int) -> list[str]:
    """``qtopt train`` arguments: a checkpoint every EVERY steps, no periodic export."""
    return ["train", "--offline_paths", str(bags), "--run-dir", str(run), "--steps", str(steps),
            "--checkpoint-every", str(EVERY), "--export-every", "1000000"]


def _newest_whole_checkpoint(directory: Path) -> int:
    """Every visible checkpoint loads and holds the step its name says; the newest one's step
    (0 when there is none), which a restart resumes at. Leaves a killed writer's temporary file
    for the restart to remove."""
    step = 0
    for path in checkpoints(directory):
        step = torch.load(path, weights_only=False)["trainer"]["step"]
        assert step == int(path.stem[5:])
    return step


def _wait_for_write(directory: Path, nth: int, proc: subprocess.Popen) -> Path:
    """The temporary file of the ``nth`` checkpoint write of ``proc``, once it appears (those
    of a killed run stay until the next one starts)."""
    seen: set[Path] = set()
    deadline = time.monotonic() + 180
    while len(seen) < nth:
        assert time.monotonic() < deadline and proc.poll() is None, "no checkpoint write"
        seen.update(directory.glob(f".ckpt-*.tmp{proc.pid}") if directory.is_dir() else ())
        time.sleep(0.01)
    return max(seen)


def test_kill_9_mid_checkpoint_resumes_at_the_previous_checkpoint(tmp_path):
    write_bags(tmp_path / "bags", 30)
    run = tmp_path / "run"
    directory = run / "checkpoints"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(31)
    resumed = 0
    for kill in range(KILLS):
        log_path = tmp_path / f"train-{kill}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen([sys.executable, "-c", SLOW_CHECKPOINTS, str(WRITE_S),
                                     *_train(tmp_path / "bags", run, 100_000)],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
        # The instant: inside this run's first or second checkpoint write.
        tmp = _wait_for_write(directory, rng.randint(1, 2), proc)
        time.sleep(rng.uniform(0.0, 0.6 * WRITE_S))
        assert proc.poll() is None, log_path.read_text()[-3000:]
        proc.kill()
        proc.wait()
        assert tmp.exists(), "the kill missed the write it aimed at"
        if resumed:
            assert f"at step {resumed}" in log_path.read_text()
            load_model(run / "model.pt")  # the resumed run's export is whole
        step = _newest_whole_checkpoint(directory)
        assert step == int(tmp.name[6:15]) - EVERY  # the previous checkpoint is the newest
        resumed = step
    assert resumed > 0
    target = resumed + 2 * EVERY
    out = subprocess.run([sys.executable, "-m", "qtopt_learner.app.cli",
                          *_train(tmp_path / "bags", run, target)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"at step {resumed}" in out.stdout, out.stdout + out.stderr[-3000:]
    assert f"reached step {target}" in out.stdout, out.stdout
    assert not list(directory.glob(".*"))  # the killed writers' temporary files are gone
    assert _newest_whole_checkpoint(directory) == target
    assert load_model(run / "model.pt").metadata.training_step == target


def _first_status_after(observer: Observer, after_ns: int) -> TrainingStatus:
    """The first TrainingStatus published after ``after_ns`` (wall clock): a new incarnation's."""
    def stamp_ns(status: TrainingStatus) -> int:
        return status.header.stamp.sec * 10**9 + status.header.stamp.nanosec

    observer.spin_until(lambda: any(stamp_ns(s) > after_ns for s in observer.status), 120,
                        "the learner node")
    return next(s for s in observer.status if stamp_ns(s) > after_ns)


@pytest.mark.ros
def test_kill_9_of_the_learner_node_resumes_with_every_received_episode(ros_domain, tmp_path):
    write_bags(tmp_path / "bags", 30)
    run = tmp_path / "run"
    params = {
        "episode_topics": "['/cell0/episodes']", "status_period_s": "0.2",
        "learner.run_dir": str(run), "learner.offline_paths": f"['{tmp_path / 'bags'}']",
        "learner.steps": "100000", "learner.checkpoint_every": str(EVERY),
        "learner.export_every": "1000000", "learner.log_every": "5",
        "learner.min_train_samples": "64", "learner.torch_threads": "1",
    }
    rng = random.Random(41)
    live = iter(episodes(3 * KILLS, seed=5000))
    received: list[str] = []  # live episodes the learner said it had, over its incarnations
    in_flight: set[str] = set()  # those published just before a kill
    log = open(tmp_path / "learner_node.log", "w+")
    observer = Observer()
    proc = start_learner_node(params, log)
    started_ns, resumed = 0, 0
    try:
        for kill in range(KILLS + 1):
            first = _first_status_after(observer, started_ns)
            # The restarted learner resumes at its checkpoint with every persisted episode. It
            # may train on before its first status reaches this process (DDS discovery), so the
            # step it resumed at is read from its log.
            persisted = list(read_episodes(run / "online")) if kill else []
            assert first.online_transitions == sum(len(e.steps) for e in persisted), (kill, first)
            assert first.step >= resumed, (kill, first)
            if kill:
                log.seek(0)
                assert re.search(rf"resumed from \S+ at step {resumed}$", log.read(), re.M), kill
            if kill == KILLS:
                break
            # Two live episodes it reports received (so persisted), one in flight at the kill.
            batch = [next(live), next(live)]
            observer.publish(batch)
            goal = resumed + 2 * EVERY  # a checkpoint since the start, at least
            observer.spin_until(lambda g=goal: observer.status[-1].online_episodes_received == 2
                                and observer.status[-1].step >= g, 120,
                                "episodes received and a checkpoint since the start")
            received += [e.episode_id for e in batch]
            last = next(live)
            in_flight.add(last.episode_id)
            observer.publish([last])
            time.sleep(rng.uniform(0.0, 0.3))
            proc.kill()
            proc.wait()
            started_ns = time.time_ns()
            project, independent = read_bags_both_ways(run / "online")
            assert len(set(independent)) == len(independent)
            assert set(received) <= set(project) <= set(independent) <= {*received, *in_flight}
            step = _newest_whole_checkpoint(run / "checkpoints")
            assert step > resumed  # the kill kept the progress up to its last checkpoint
            resumed = step
            proc = start_learner_node(params, log)
        observer.spin_until(lambda: observer.status[-1].step > resumed, 120, "training on")
    finally:
        observer.close()
        stop_process(proc)
        log.seek(0)
        print(log.read()[-3000:])
        log.close()
