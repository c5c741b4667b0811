"""Learning test: the full in-process learner (bags -> log replay -> Bellman updater ->
trainer) converges to the known optimal Q values of a two-state MDP (chain_mdp.py)."""

import dataclasses

import numpy as np
import pytest
import torch

from qtopt_learner.distributed.checkpoint import checkpoints
from qtopt_learner.distributed.engine import InProcessLearner
from qtopt_learner.learner_config import LearnerConfig
from qtopt_learner.trainer import TrainerConfig
from qtopt_policy.cem_actor import CEMActor, StateBatch, evaluate_actions
from qtopt_policy.spec import ACTION, LOW_DIM_STATE, ActionBounds, center_crop
from qtopt_policy.torchscript_model import load_model, load_weights, weights_path

from .chain_mdp import Q_STAR, observation, probe_actions, write_bags

STEPS = 450  # converges to within about 0.02 of Q* by 400 steps (seeds 3, 4)
TOLERANCE = 0.1
# The low-dim state of every chain observation: gripper open, 0.3 m above the floor.
LOW_DIM = torch.from_numpy(LOW_DIM_STATE.encode(gripper_closed=0.0, height_to_bottom=0.3))


def chain_config(run_dir, data_dir, **overrides) -> LearnerConfig:
    trainer = TrainerConfig(lr=0.02, polyak=0.98, target_lag_steps=40)
    settings = dict(run_dir=str(run_dir), offline_paths=(str(data_dir),), steps=STEPS,
                    checkpoint_every=STEPS // 3, export_every=STEPS // 3, seed=3)
    return dataclasses.replace(LearnerConfig(trainer=trainer), **{**settings, **overrides})


def q_values(model, rng) -> dict:
    probes = probe_actions()
    out = {}
    for (state, choice), action in probes.items():
        states = StateBatch(torch.from_numpy(np.stack(
            [center_crop(observation(state, rng).image, 64) for _ in range(16)])),
            LOW_DIM.repeat(16, 1))
        actions = torch.from_numpy(np.stack([action] * 16))
        out[(state, choice)] = float(evaluate_actions(model, states, actions).mean())
    return out


@pytest.mark.slow
def test_converges_to_optimal_q_values(tmp_path):
    write_bags(tmp_path / "bags", 300)
    config = chain_config(tmp_path / "run", tmp_path / "bags")
    with InProcessLearner(config, progress=False) as learner:
        summary = learner.train()
    assert summary.step == STEPS and len(checkpoints(tmp_path / "run" / "checkpoints")) == 3
    model = load_model(tmp_path / "run" / "model.pt")
    assert model.metadata.training_step == STEPS
    rng = np.random.default_rng(0)
    q = q_values(model.module, rng)
    errors = {k: abs(q[k] - Q_STAR[k]) for k in Q_STAR}
    assert max(errors.values()) < TOLERANCE, (q, errors)
    # the greedy policy (CEM on Q_bar_1) moves in A and closes in B
    actor = CEMActor(model.module, ActionBounds())
    for state, expect_close, expect_terminate in (("A", None, False), ("B", True, None)):
        best = actor.argmax(StateBatch(torch.from_numpy(
            center_crop(observation(state, rng).image, 64)[None]), LOW_DIM[None]))
        action = best.actions[0]
        if expect_terminate is not None:
            assert bool(ACTION.terminate(action) > 0.5) == expect_terminate
        if expect_close is not None:
            assert bool(ACTION.gripper_close(action) > ACTION.gripper_open(action)) == expect_close


def test_every_export_has_its_safetensors_weights_beside_it(tmp_path):
    write_bags(tmp_path / "bags", 20)
    config = chain_config(tmp_path / "run", tmp_path / "bags", steps=6, checkpoint_every=6,
                          export_every=3)
    with InProcessLearner(config, progress=False) as learner:
        learner.train()
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "models").iterdir()) == [
        "model-000000003.pt", "model-000000003.safetensors",
        "model-000000006.pt", "model-000000006.safetensors"]
    latest = load_model(run / "model.pt")
    weights = load_weights(weights_path(run / "model.pt"))
    assert weights.torchscript_sha256 == latest.sha256
    assert weights.metadata == latest.metadata and weights.metadata.training_step == 6
