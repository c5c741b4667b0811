"""The Ray engine on a local two-node cluster bound to loopback: the same workers as actors
learn the chain MDP like the in-process engine, and Bellman updaters killed with kill -9 are
replaced while training goes on (the Ray updater's fault drill)."""

import os
import random
import signal
import threading
import time

import numpy as np
import pytest
import ray
from ray.cluster_utils import Cluster

from qtopt_learner.distributed.ray_engine import LOOPBACK, RayLearner
from qtopt_policy.torchscript_model import load_model

from .chain_mdp import Q_STAR, write_bags
from .test_learning_chain_mdp import STEPS, TOLERANCE, chain_config, q_values

pytestmark = pytest.mark.slow


@pytest.fixture
def two_node_cluster(monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "node_ip_address": LOOPBACK, "include_dashboard": False})
    cluster.add_node(num_cpus=2, node_ip_address=LOOPBACK)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def _kill_updaters(learner: RayLearner, instants: list[tuple[int, float]],
                   killed: list[int], errors: list[BaseException]) -> None:
    """Fault drill: at each (training step, delay) instant kill -9 the process of an updater
    (alternately 0 and 1), then wait until the learner replaced it."""
    try:
        for i, (step, delay_s) in enumerate(instants):
            while learner.hub.trainer_status().step < step:
                time.sleep(0.05)
            time.sleep(delay_s)
            actor = learner.updater_actors()[i % 2]
            os.kill(ray.get(actor.pid.remote(), timeout=60), signal.SIGKILL)
            killed.append(step)
            deadline = time.monotonic() + 120
            while learner.updater_restarts < len(killed):
                assert time.monotonic() < deadline, f"updater killed at {step} not replaced"
                time.sleep(0.1)
    except BaseException as err:  # reported by the test's thread
        errors.append(err)


def test_ray_learner_converges_through_kill_9_of_its_updaters(two_node_cluster, tmp_path):
    """Fault drill: kill -9 of a Ray updater's process at three seeded random instants; each is
    replaced while training goes on, which reaches its step and still converges."""
    write_bags(tmp_path / "bags", 300)
    config = chain_config(tmp_path / "run", tmp_path / "bags", engine="ray", updaters=2,
                          ray_address=two_node_cluster.address, log_every=10)
    rng = random.Random(5)
    instants = [(step, rng.uniform(0.0, 0.5))
                for step in sorted(rng.sample(range(50, STEPS * 2 // 3, 10), 3))]
    killed: list[int] = []
    errors: list[BaseException] = []
    with RayLearner(config, progress=False) as learner:
        nodes = {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
        assert nodes == {LOOPBACK} and len(ray.nodes()) == 2
        killer = threading.Thread(target=_kill_updaters,
                                  args=(learner, instants, killed, errors), daemon=True)
        killer.start()
        summary = learner.train()
        killer.join(timeout=10)
        assert not errors, errors
        assert len(killed) == 3 and learner.updater_restarts == 3
        written = learner.hub.ring_stats().written
        time.sleep(1.0)
        assert learner.hub.ring_stats().written > written  # updaters still labelling
    assert summary.step == STEPS
    model = load_model(tmp_path / "run" / "model.pt")
    q = q_values(model.module, np.random.default_rng(0))
    errors_q = {k: abs(q[k] - Q_STAR[k]) for k in Q_STAR}
    assert max(errors_q.values()) < TOLERANCE, (q, errors_q)


def test_two_training_workers_train_in_lockstep_with_ddp(two_node_cluster, tmp_path):
    write_bags(tmp_path / "bags", 300)
    config = chain_config(tmp_path / "run", tmp_path / "bags", engine="ray", trainers=2,
                          ray_address=two_node_cluster.address)
    # Lockstep is the property here; that the Ray workers learn is the test above's.
    steps = STEPS // 4
    with RayLearner(config, progress=False) as learner:
        learner.train(steps=steps)
        checksums = ray.get([t.weights_checksum.remote() for t in learner.trainers])
    assert [s.step for s in learner.worker_summaries] == [steps, steps]
    assert checksums[0] == pytest.approx(checksums[1], rel=1e-9)
    assert load_model(tmp_path / "run" / "model.pt").metadata.training_step == steps
