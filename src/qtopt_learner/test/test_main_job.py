"""The main job end to end on the smoke budget: scripted_noisy bootstrap through the ROS 2 cell
graph, off-policy training, on-policy fine-tuning with cells + policy node + learner node,
both evaluation protocols, the report; then a rerun that skips every finished phase."""

import json

import cv2
import pytest

from qtopt_collector.bag_recorder import read_episodes
from qtopt_learner.main_job import BUDGETS, AblationConfig, MainJob, MainJobConfig
from qtopt_learner.report import difference_interval
from qtopt_policy.torchscript_model import load_model


@pytest.mark.ros
@pytest.mark.slow
def test_main_job_runs_every_phase_and_writes_the_report(ros_domain, tmp_path, capsys):
    plan = BUDGETS["smoke"]
    config = MainJobConfig(run_dir=str(tmp_path / "run"), budget="smoke", bin_objects=3)
    report = MainJob(config, progress=False).run_all()
    run = tmp_path / "run"
    state = json.loads((run / "state.json").read_text())

    assert state["bootstrap"]["episodes"] == plan.bootstrap_episodes
    bootstrap = list(read_episodes(run / "bootstrap"))
    assert len(bootstrap) == plan.bootstrap_episodes
    assert {e.policy_name for e in bootstrap} == {"scripted_noisy"}
    assert state["off_policy"]["step"] == plan.offline_steps
    assert load_model(state["off_policy"]["model"]).metadata.training_step == plan.offline_steps
    # fine-tuning: the live episodes reached the learner node, which persisted them and
    # exported the model the evaluation used as "fine-tuned"
    assert state["on_policy"]["episodes"] == plan.finetune_episodes
    online = list(read_episodes(run / "learner" / "online"))
    assert len(online) == plan.finetune_episodes
    assert {e.policy_name for e in online} == {"noisy"}
    fine_tuned = load_model(state["on_policy"]["model"])
    assert fine_tuned.metadata.training_step == state["on_policy"]["step"] > plan.offline_steps

    policies = state["evaluation"]["policies"]
    assert list(policies) == ["scripted", "off-policy", "fine-tuned"]
    for result in policies.values():
        assert result["grasps"]["attempts"] == plan.eval_attempts
        assert len(result["bin_outcomes"][0]) == plan.bin_attempts
        assert sum(result["bin_outcomes"][0]) <= 3
    text = report.read_text()
    for name in policies:
        assert f"| {name} | " in text
    assert "scripted baseline**: margin" in text
    for png in ("learning_curves.png", "filmstrips.png"):
        image = cv2.imread(str(run / "figures" / png))
        assert image is not None and image.shape[0] > 100
    assert any((run / "learner" / "tensorboard").glob("events.out.tfevents.*"))

    capsys.readouterr()
    MainJob(config, progress=False).run_all()  # everything done: phases are skipped
    assert capsys.readouterr().out.count("(done, skipped)") == 4
    assert json.loads((run / "state.json").read_text()) == state


def test_ablations_reach_the_learner_and_the_cells(tmp_path):
    job = MainJob(MainJobConfig(run_dir=str(tmp_path), ablation=AblationConfig(
        state="image", reward="discount", termination="scripted", target="double_q")))
    learner = job.learner_config(100)
    assert not learner.network.use_gripper_status and not learner.network.use_height
    assert not learner.updater.target.clipped_double_q
    assert not learner.updater.cem.learned_termination
    cells = job.cell_config("scripted")
    assert cells.scripted_termination and cells.step_penalty == 0.0
    default = MainJob(MainJobConfig(run_dir=str(tmp_path / "d")))
    assert default.learner_config(100).network.use_height
    assert default.cell_config("scripted").step_penalty == -0.05
    paper = MainJob(MainJobConfig(run_dir=str(tmp_path / "p"), preset="paper"))
    sim = paper.cell_config("scripted").sim
    assert (sim.camera_width, sim.camera_height) == (640, 512)  # the 472 px crop fits
    assert paper.learner_config(100).network.image_size == 472
    with pytest.raises(ValueError, match="ablation state 'depth'"):
        AblationConfig(state="depth")
    with pytest.raises(ValueError, match="budget '2h'"):
        MainJobConfig(run_dir=str(tmp_path), budget="2h")


def test_difference_interval_by_hand():
    d, low, high = difference_interval(30, 50, 15, 50)
    assert d == pytest.approx(0.30)
    # by hand: Wilson 30/50 = (0.4618, 0.7239), 15/50 = (0.1910, 0.4375)
    assert (low, high) == pytest.approx((0.1051, 0.4650), abs=1e-4)
    assert difference_interval(0, 10, 0, 10)[0] == 0.0
