"""The reference sim model (``models/sim_reference.pt``, issue 15): the file its metadata names,
numbers that agree with each other, a model the main job's evaluation cell accepts, and a greedy
policy that, on a few held-out attempts under the rule it was trained with, descends and
closes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qtopt_collector.episode import run_episode
from qtopt_collector.evaluation import GRASP_SEED, difference_interval, wilson_interval
from qtopt_collector.sim_cell import SimCell
from qtopt_learner.app.ablations import AblationConfig
from qtopt_learner.app.main_job_config import MainJobConfig
from qtopt_policy.episode_record import Termination
from qtopt_policy.policies import PolicySource
from qtopt_policy.torchscript_model import file_sha256, load_model

MODELS = Path(__file__).resolve().parents[3] / "models"
MODEL, METADATA = MODELS / "sim_reference.pt", MODELS / "sim_reference.json"
ATTEMPTS = 3


@pytest.fixture(scope="module")
def info() -> dict:
    return json.loads(METADATA.read_text())


def test_the_metadata_names_this_file_and_numbers_that_agree(info):
    assert file_sha256(MODEL) == info["sha256"]
    assert info["command"].startswith("./scripts/run_main.sh")
    assert f"--budget {info['budget']}" in info["command"]
    assert f"--ablation.termination {info['termination']}" in info["command"]
    held_out = info["held_out"]
    counts = []
    for name in ("learned", "scripted"):
        row = held_out[name]
        assert row["rate"] == pytest.approx(row["successes"] / row["attempts"], abs=1e-4)
        assert row["wilson_95"] == pytest.approx(
            wilson_interval(row["successes"], row["attempts"]), abs=1e-4)
        counts += [row["successes"], row["attempts"]]
    margin, low, high = difference_interval(*counts)
    assert held_out["margin"] == pytest.approx(margin, abs=1e-4)
    assert held_out["margin_newcombe_95"] == pytest.approx([low, high], abs=1e-4)


def test_the_model_is_the_exported_step_on_the_main_jobs_camera(info):
    metadata = load_model(MODEL).metadata
    assert (metadata.preset, metadata.training_step, metadata.termination) == (
        info["preset"], info["training_step"], info["termination"])
    cell = MainJobConfig(run_dir="", preset=info["preset"]).sim("test")
    assert metadata.camera == cell.camera()
    assert metadata.label_source == "truth"


@pytest.mark.slow
def test_greedy_episodes_descend_and_close_under_the_models_rule():
    """The trained routine on Sec. 6.1's held-out objects: every greedy episode descends from
    the start height toward the bin floor, and the model's own closes end episodes (the
    ``close`` rule)."""
    metadata = load_model(MODEL).metadata
    rule = metadata.termination
    cell = SimCell(MainJobConfig(run_dir="", preset=metadata.preset).sim("test"))
    try:
        policy = PolicySource(model_path=str(MODEL)).make(seed=GRASP_SEED)
        records = [run_episode(cell, policy, GRASP_SEED + k,
                               AblationConfig(termination=rule).episode)
                   for k in range(ATTEMPTS)]
    finally:
        cell.close()
    for record in records:
        heights = [s.observation.height_to_bottom for s in record.steps]
        assert min(heights + [record.final_observation.height_to_bottom]) < 0.1 < heights[0]
    closed = [r for r in records if r.termination is Termination.SCRIPTED]
    assert closed and all(r.steps[-1].action.gripper_close for r in closed)
