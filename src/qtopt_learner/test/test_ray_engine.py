"""The Ray engine on a local two-node cluster bound to loopback: the same workers as actors
learn the chain MDP like the in-process engine, and a killed Bellman updater is replaced
while training goes on."""

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


def test_ray_learner_converges_and_replaces_a_killed_updater(two_node_cluster, tmp_path):
    write_bags(tmp_path / "bags", 300)
    config = chain_config(tmp_path / "run", tmp_path / "bags", engine="ray", updaters=2,
                          ray_address=two_node_cluster.address)
    with RayLearner(config, progress=False) as learner:
        nodes = {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
        assert nodes == {LOOPBACK} and len(ray.nodes()) == 2
        learner.train(steps=STEPS // 3)
        ray.kill(learner.updater_actors()[0])
        summary = learner.train()
        assert learner.updater_restarts >= 1
        written = learner.hub.ring_stats().written
        time.sleep(1.0)
        assert learner.hub.ring_stats().written > written  # updaters still labelling
    assert summary.step == STEPS
    model = load_model(tmp_path / "run" / "model.pt")
    q = q_values(model.module, np.random.default_rng(0))
    errors = {k: abs(q[k] - Q_STAR[k]) for k in Q_STAR}
    assert max(errors.values()) < TOLERANCE, (q, errors)


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
