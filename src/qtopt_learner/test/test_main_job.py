"""The main job end to end on the smoke budget: cells collect through the ROS 2 cell graph
while a learner node trains on their episodes (scripted_noisy, then pi_noisy from the policy
node serving the newest export), both evaluation protocols, the report; resuming from episodes
already recorded; then a rerun that skips every finished phase."""

import json

import cv2
import pytest

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig, read_episodes
from qtopt_collector.episode import run_episode
from qtopt_collector.sim_cell import SimCell
from qtopt_learner.app.ablations import AblationConfig
from qtopt_learner.app.budgets import BUDGETS
from qtopt_learner.app.main_job import MainJob, MainJobConfig
from qtopt_learner.app.report import difference_interval
from qtopt_policy.policies import local_policy
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import load_model


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
    assert "of Q(s, stop) on" in text and state["evaluation"]["stop_probe"]["states"] > 0
    for png in ("learning_curves.png", "filmstrips.png"):
        image = cv2.imread(str(run / "figures" / png))
        assert image is not None and image.shape[0] > 100
    assert any((run / "learner" / "tensorboard").glob("events.out.tfevents.*"))

    capsys.readouterr()
    MainJob(config, progress=False).run_all()  # everything done: phases are skipped
    assert capsys.readouterr().out.count("(done, skipped)") == 2
    assert json.loads((run / "state.json").read_text()) == state


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
    default = MainJob(MainJobConfig(run_dir=str(tmp_path / "d")))
    assert default.learner_config().network.use_height
    assert default.learner_config().updater.cem.learned_termination
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
    with pytest.raises(ValueError, match="ablation state 'depth'"):
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
