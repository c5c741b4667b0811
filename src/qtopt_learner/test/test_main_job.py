"""The main job end to end on the smoke budget: cells collect through the ROS 2 cell graph
while a learner node trains on their episodes (scripted_noisy, then pi_noisy from the policy
node serving the newest export), both evaluation protocols, the report; resuming from episodes
already recorded; then a rerun that skips every finished phase. Without ROS: an interrupted
collection or evaluation continues without duplicates."""

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from qtopt_collector import evaluation
from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig, read_episodes
from qtopt_collector.episode import run_episode
from qtopt_collector.episode_driver import CollectionStats
from qtopt_collector.sim_cell import SimCell
from qtopt_learner.app import main_job
from qtopt_learner.app.ablations import AblationConfig
from qtopt_learner.app.budgets import BUDGETS
from qtopt_learner.app.main_job import MainJob, MainJobConfig, collection_seeds
from qtopt_learner.app.report import difference_interval, probe_sentences
from qtopt_learner.app.run_record import EvaluationRecord, TrainRecord
from qtopt_learner.app.training_graph import ConcurrentStats
from qtopt_learner.probes import OutcomeAUC, StopValueProbe
from qtopt_policy.cem import CEMConfig
from qtopt_policy.episode_record import EpisodeRecord, StepRecord, Termination
from qtopt_policy.policies import local_policy
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import Action, ActionBounds, Observation
from qtopt_policy.torchscript_model import ModelMetadata, export_model, load_model


def _record_scripted(job: MainJob, episodes: int) -> list[str]:
    """Episodes an interrupted run would have left in the run folder."""
    cell = SimCell(job.config.sim("train"))
    recorder = BagRecorder(RecorderConfig(str(job.layout.episodes), "cell0"))
    ids = []
    try:
        for seed in range(episodes):
            record = run_episode(cell, local_policy("scripted_noisy", ActionBounds(), seed),
                                 seed, job.config.ablation.episode, "cell0")
            recorder.write(record)
            ids.append(record.episode_id)
    finally:
        cell.close()
    return ids


README = Path(__file__).resolve().parents[3] / "README.md"


def readme_run_tree() -> list[str]:
    """The paths of the README's run-folder tree (``├── name  comment`` lines), as globs."""
    block = README.read_text().split("What it leaves in `runs/first`")[1].split("```")[1]
    parents: list[str] = []
    paths = []
    for line in block.splitlines()[2:]:  # after the fence's line end and the root line
        branch = max(line.find("├── "), line.find("└── "))
        if branch < 0:
            continue  # a comment's continuation line
        name = line[branch + 4:].split("  ")[0].strip().replace("<time>", "*")
        parents = parents[:branch // 4] + [name.rstrip("/")]
        paths.append("/".join(parents))
    return paths


def test_the_readme_run_tree_is_read_whole() -> None:
    paths = readme_run_tree()
    assert {"report.md", "figures/filmstrips.png", "learner/model.safetensors",
            "learner/checkpoints", "logs"} <= set(paths), paths


@pytest.mark.ros
@pytest.mark.slow
def test_main_job_runs_every_phase_and_writes_the_report(ros_domain, tmp_path, capsys):
    plan = BUDGETS["smoke"]
    config = MainJobConfig(run_dir=str(tmp_path / "run"), budget="smoke", bin_objects=3)
    job = MainJob(config, progress=False)
    earlier = _record_scripted(job, 5)
    report = job.run_all()
    run = tmp_path / "run"
    state = json.loads((run / "state.json").read_text())

    # the interrupted run's episodes count: only the rest is collected, under new seeds
    recorded = list(read_episodes(run / "episodes"))
    assert state["train"]["episodes"] == len(recorded) == plan.episodes
    ids = [e.episode_id for e in recorded]
    assert len(set(ids)) == len(ids) and set(earlier) <= set(ids)
    assert {e.policy_name for e in recorded} <= {"scripted_noisy", "noisy"}
    assert sum(state["train"]["chosen"].values()) == plan.episodes - len(earlier)
    assert state["train"]["resumed_with"] == len(earlier)  # its seconds are partial
    assert [c["policy"] for c in state["train"]["collection"]][:5] == ["scripted_noisy"] * 5
    # the learner trained on them and exported the model the evaluation used
    learned = load_model(state["train"]["model"])
    assert 0 < learned.metadata.training_step == state["train"]["step"] <= plan.steps
    # provenance: the camera and label source of the data it learned from
    assert learned.metadata.camera == config.sim("test").camera() == config.sim("train").camera()
    assert learned.metadata.label_source == "truth"

    policies = state["evaluation"]["policies"]
    assert list(policies) == ["scripted", "learned"]
    for result in policies.values():
        assert result["grasps"]["attempts"] == plan.eval_attempts
        assert len(result["bin_outcomes"][0]) == plan.bin_attempts
        assert sum(result["bin_outcomes"][0]) <= 3
    text = report.read_text()
    for name in policies:
        assert f"| {name} | " in text
    assert "scripted baseline**: margin" in text and "simulator's truth" in text
    assert f"Training resumed with {len(earlier)} episodes recorded" in text
    # the default close rule ends scripted episodes at the close: no lifted state to probe
    assert state["evaluation"]["stop_probe"]["states"] == 0 and "Q(s, stop)" not in text
    close = state["evaluation"]["close_probe"]
    assert close["episodes"] == plan.eval_attempts and f"close AUC {close['close']:.2f}" in text
    for png in ("learning_curves.png", "filmstrips.png"):
        image = cv2.imread(str(run / "figures" / png))
        assert image is not None and image.shape[0] > 100
    assert any((run / "learner" / "tensorboard").glob("events.out.tfevents.*"))
    for entry in readme_run_tree():  # the README shows the run folder a newcomer gets
        assert any(run.glob(entry)), f"README's run folder lists {entry}, the run has none"

    printed = capsys.readouterr().out
    assert "[qtopt] learned: close AUC" in printed and "Q(s, stop)" not in printed
    MainJob(config, progress=False).run_all()  # everything done: phases are skipped
    assert capsys.readouterr().out.count("(done, skipped)") == 2
    assert json.loads((run / "state.json").read_text()) == state


def test_the_report_says_what_each_probe_saw():
    stop = StopValueProbe(auc=0.8, states=12, successes=5, q_success=0.6, q_failure=0.1)
    close = OutcomeAUC(episodes=40, close=0.71, last=0.65)
    record = EvaluationRecord(policies={}, curve=(), stop_probe=stop, seconds=1.0,
                              close_probe=close)
    text = probe_sentences(record)
    assert "AUC 0.800 of Q(s, stop) on 12 lifted states" in text
    assert "close AUC 0.71, last-transition AUC 0.65 on 40 episodes" in text
    none_lifted = dataclasses.replace(stop, states=0)
    text = probe_sentences(dataclasses.replace(record, stop_probe=none_lifted))
    assert "Q(s, stop)" not in text and "close AUC 0.71" in text
    assert probe_sentences(dataclasses.replace(record, stop_probe=none_lifted,
                                               close_probe=None)) == ""


def test_ablations_reach_the_learner_and_the_cells(tmp_path):
    job = MainJob(MainJobConfig(run_dir=str(tmp_path), ablation=AblationConfig(
        state="image", reward="penalty", termination="scripted", target="double_q",
        bound="monte_carlo")))
    learner = job.learner_config()
    assert not learner.network.use_gripper_status and not learner.network.use_height
    assert not learner.updater.target.clipped_double_q
    assert learner.updater.target.mc_lower_bound
    assert not learner.updater.cem.learned_termination
    # given bags are relabeled under the run's reward
    assert learner.hub.relabel_rewards and learner.hub.step_penalty == -0.05
    cells = job.cell_config()
    assert cells.episode.scripted_termination and cells.episode.step_penalty == -0.05
    assert not cells.episode.close_ends_episode
    close = MainJob(MainJobConfig(run_dir=str(tmp_path / "c"),
                                  ablation=AblationConfig(termination="close")))
    assert close.cell_config().episode.close_ends_episode
    assert not close.learner_config().updater.cem.learned_termination
    assert close.learner_config().termination == "close"  # recorded in its exports
    default = MainJob(MainJobConfig(run_dir=str(tmp_path / "d")))
    assert default.learner_config().network.use_height
    assert not default.learner_config().updater.cem.learned_termination
    assert default.cell_config().episode.close_ends_episode  # the rule that learns here
    learned = MainJob(MainJobConfig(run_dir=str(tmp_path / "l"),
                                    ablation=AblationConfig(termination="learned")))
    assert learned.learner_config().updater.cem.learned_termination
    assert not learned.cell_config().episode.scripted_termination
    assert not default.learner_config().updater.target.mc_lower_bound
    assert default.cell_config().episode.step_penalty == 0.0  # discount only
    assert default.learner_config().hub.step_penalty == 0.0
    paper = MainJob(MainJobConfig(run_dir=str(tmp_path / "p"), preset="paper"))
    sim = paper.cell_config().sim
    assert (sim.camera_width, sim.camera_height) == (640, 512)  # the 472 px crop fits
    assert paper.learner_config().network.image_size == 472
    sim96 = MainJob(MainJobConfig(run_dir=str(tmp_path / "s"), preset="sim96"))
    assert sim96.learner_config().network.image_size == 96
    assert sim96.cell_config().sim.camera_width >= 96  # the crop fits
    with pytest.raises(ValueError, match="state 'depth'"):
        AblationConfig(state="depth")
    with pytest.raises(ValueError, match="budget '3h'"):
        MainJobConfig(run_dir=str(tmp_path), budget="3h")
    with pytest.raises(ValueError, match="learned_share 1.5"):
        MainJobConfig(run_dir=str(tmp_path), learned_share=1.5)


def test_training_cells_keep_their_bin_and_evaluation_cells_do_not(tmp_path):
    config = MainJobConfig(run_dir=str(tmp_path))
    train, test = config.sim("train"), config.sim("test")
    assert train.respawn_every > 1 and test.respawn_every == 1
    assert (train.object_split, test.object_split) == ("train", "test")
    assert (train.label, test.label) == ("truth", "detector")
    assert train.camera_target_height == test.camera_target_height > 0  # the in-view camera
    assert MainJobConfig(run_dir=str(tmp_path), budget="gpu").num_cells >= 1
    old = tmp_path / "old"
    old.mkdir()
    (old / "state.json").write_text('{"bootstrap": {"episodes": 500}}')
    with pytest.raises(ValueError, match="earlier bootstrap/off-policy/fine-tuning job"):
        MainJob(MainJobConfig(run_dir=str(old)))
    assert MainJobConfig(run_dir=str(tmp_path), cells=3).num_cells == 3


def test_difference_interval_by_hand():
    d, low, high = difference_interval(30, 50, 15, 50)
    assert d == pytest.approx(0.30)
    # by hand: Wilson 30/50 = (0.4618, 0.7239), 15/50 = (0.1910, 0.4375)
    assert (low, high) == pytest.approx((0.1051, 0.4650), abs=1e-4)
    assert difference_interval(0, 10, 0, 10)[0] == 0.0


# -- resuming an interrupted run, without ROS: the graph and the episodes are stand-ins --------

def _stand_in_episode(seed: int) -> EpisodeRecord:
    """A tiny recorded episode: only its seed matters to the count."""
    obs = Observation(np.zeros((4, 4, 3), np.uint8), False, 0.2)
    step = StepRecord(obs, Action.stop(), 0.0, True, 0.0)
    return EpisodeRecord(f"cell0-{seed}", "cell0", "scripted_noisy", 0, Termination.LEARNED,
                         [step], obs, False, False, [], seed)


class _Killed(Exception):
    """What a kill of the job looks like to the test."""


def test_an_interrupted_collection_continues_to_its_count_with_new_seeds(tmp_path, monkeypatch):
    config = MainJobConfig(run_dir=str(tmp_path / "run"), budget="smoke")
    episodes = config.plan.episodes
    requested: list[range] = []

    def graph(cells, learner, collection, count, log_dir, online_dir, seed, progress):
        """Cells record ``count`` episodes under seeds from ``seed`` (the runner's order); the
        first run dies mid-write of its fifth episode."""
        assert seed != 0  # the episode runner replaces seed 0 by a random one
        requested.append(range(seed, seed + count))
        recorder = BagRecorder(RecorderConfig(str(online_dir), "cell0"))
        for k, s in enumerate(requested[-1]):
            if len(requested) == 1 and k == 4:
                (recorder.bag / ".tmp_4").mkdir()  # the half-written episode
                (recorder.bag / ".tmp_4" / "half.mcap").write_bytes(b"\x89MCAP0\r\n")
                raise _Killed
            recorder.write(_stand_in_episode(s))
        models = Path(learner.run_dir) / "models"
        models.mkdir(parents=True, exist_ok=True)
        (models / "model-000000120.pt").touch()
        return ConcurrentStats(CollectionStats(episodes=count), {"scripted_noisy": count})

    monkeypatch.setattr(main_job, "run_concurrent_graph", graph)
    with pytest.raises(_Killed):
        MainJob(config, progress=False).collect_and_train()
    train = MainJob(config, progress=False).collect_and_train()

    # the half-written episode is not counted; the rest continues the interrupted run's seeds
    seeds = sorted(r.seed for r in read_episodes(tmp_path / "run" / "episodes"))
    assert train.episodes == len(seeds) == episodes  # not episodes + 4
    assert requested == [range(1, episodes + 1), range(5, episodes + 1)]
    assert seeds == list(requested[0])


def test_collection_seeds_by_hand():
    assert collection_seeds([], 5, run_seed=0) == range(1, 6)  # seed 0: the cell's choice
    assert collection_seeds([1, 2, 3], 5, run_seed=0) == range(4, 6)
    assert collection_seeds([1, 2, 9], 5, run_seed=0) == range(10, 12)  # 9: a retry's seed
    assert len(collection_seeds(range(1, 8), 5, run_seed=0)) == 0
    assert collection_seeds([], 2, run_seed=3) == range(3_000_001, 3_000_003)


@pytest.mark.parametrize("kwargs, message", [
    ({"bin_objects": 31}, r"bin_objects 31: expected in \[1, 30\]"),  # what a bin holds
    ({"cells": -1}, "cells -1: expected >= 0"), ({"eval_workers": 0}, "eval_workers 0"),
    ({"seed": -1}, "seed -1: expected >= 0"), ({"learned_share": 2.0}, "learned_share 2.0")])
def test_the_main_job_config_refuses_values_outside_its_bounds(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MainJobConfig(run_dir="r", **kwargs)


def test_an_interrupted_evaluation_continues_from_its_finished_attempts(tmp_path, monkeypatch):
    config = MainJobConfig(run_dir=str(tmp_path / "run"), budget="smoke", bin_objects=3,
                           eval_workers=1)
    plan, job = config.plan, MainJob(config, progress=False)
    for step in (60, 120):  # an intermediate export for the curve and the final one
        torch.manual_seed(step)
        export_model(QNetwork(PRESETS["sim"]).eval(), job.layout.learner.model_at(step),
                     ModelMetadata("sim", PRESETS["sim"], ActionBounds(), CEMConfig(), step, 1))
    job.record.train = TrainRecord(episodes=0, step=120, chosen={}, collection=(), seconds=0.0,
                                   model=str(job.layout.learner.model_at(120)))
    job.record.save(job.layout.record)
    ran: list[int] = []
    kill_at = [plan.eval_attempts + 2]  # the scripted grasps, then into the scripted bin

    def episode(cell, policy, seed, config, *args, **kwargs):
        if len(ran) + 1 == kill_at[0]:
            raise _Killed
        ran.append(seed)
        return SimpleNamespace(ground_truth=seed % 3 == 0, success=seed % 3 == 0, steps=[0] * 3)

    monkeypatch.setattr(evaluation, "run_episode", episode)
    monkeypatch.setattr(main_job, "scripted_episodes", lambda *args: [])
    with pytest.raises(_Killed):
        job.evaluate()
    assert len(ran) == plan.eval_attempts + 1
    ran.clear()
    kill_at[0] = 0
    result = MainJob(config, progress=False).evaluate()

    # per policy: the grasps and the bin; one curve point; the finished scripted grasps are not
    # run again (the bin is: its attempts depend on the objects the earlier ones left)
    total = 2 * (plan.eval_attempts + plan.bin_attempts) + plan.curve_attempts
    assert len(ran) == total - plan.eval_attempts
    scripted = result.policies["scripted"].grasps
    seeds = range(100_000, 100_000 + plan.eval_attempts)
    assert scripted.attempts == plan.eval_attempts
    assert scripted.successes == sum(s % 3 == 0 for s in seeds)
    assert [c.step for c in result.curve] == [60]
