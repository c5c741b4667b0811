"""``qtopt train``'s options are LearnerConfig's fields over the preset's learner (issue 18, one
config system): a preset sets its trainer, an option or the file still wins field by field, and
a run folder's config.yaml rebuilds the same learner."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from qtopt_learner.app.train_command import parse_train_config
from qtopt_learner.learner_config import TRAINER_PRESETS, learner_preset
from qtopt_policy.config_files import save_config
from qtopt_policy.usage import UsageError


@pytest.fixture
def bags(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bags" / "bag0").mkdir(parents=True)
    (tmp_path / "bags" / "bag0" / "bag0_0.mcap").write_bytes(b"")
    return tmp_path / "bags"


def test_the_preset_sets_the_trainer_and_options_win_field_by_field(bags):
    sim = parse_train_config(["--offline_paths", "bags", "--run_dir", "r"])
    assert sim == learner_preset("sim", run_dir=str(bags.parent / "r"),
                                 offline_paths=(str(bags),))
    paper = parse_train_config(["--offline-paths", "bags", "--run-dir", "r", "--preset", "paper",
                                "--trainer.lr", "0.5"])
    assert paper.trainer == dataclasses.replace(TRAINER_PRESETS["paper"], lr=0.5)
    assert paper.trainer.polyak == TRAINER_PRESETS["paper"].polyak != sim.trainer.polyak
    # every field of the learner is an option: DDP training workers, one replay buffer's share
    ddp = parse_train_config(["--offline_paths", "bags", "--engine", "ray", "--trainers", "2",
                              "--hub.offline.terminal_fraction", "0.25"])
    assert ddp.trainers == 2 and ddp.hub.offline.terminal_fraction == 0.25
    assert ddp.hub.online.terminal_fraction == 0.0
    assert Path(ddp.run_dir).name.startswith("offline__0__")  # a new folder by default


def test_a_saved_learner_config_reproduces_the_run(bags, tmp_path):
    first = parse_train_config(["--offline_paths", "bags", "--run_dir", "first", "--preset",
                                "sim96", "--steps", "300", "--seed", "2", "--updaters", "2",
                                "--updater.cem.num_samples", "16"])
    save_config(first, tmp_path / "config.yaml")
    again = parse_train_config(["--config", str(tmp_path / "config.yaml")])
    assert again == first
    moved = parse_train_config(["--config", str(tmp_path / "config.yaml"), "--run_dir", "b",
                                "--preset", "sim"])
    # the file holds every field, so another preset changes only the network, not the trainer
    assert moved == dataclasses.replace(first, run_dir=str(tmp_path / "b"), preset="sim")


@pytest.mark.parametrize(("args", "expected"), [
    ([], "--offline_paths: none given"),
    (["--offline_paths", "missing"], "--offline_paths missing: no such file or folder"),
    (["--offline_paths", "bags", "--trainers", "2"],
     "--trainers 2: several training workers need the ray engine"),
    (["--offline_paths", "bags", "--trainer.lr", "0"], "--trainer.lr 0.0: expected > 0"),
    (["--offline_paths", "bags", "--hub.offline.terminal_fraction", "1"],
     # both replay buffers are ReplayConfigs: the error cannot tell which one it came from
     "--hub.offline or --hub.online: terminal_fraction 1.0: expected in [0, 1)"),
    (["--offline_paths", "bags", "--device", "gpu"], "--device 'gpu': expected 'auto'"),
    (["--offline_paths", "bags", "--preset", "big"], "--preset 'big': expected one of"),
    (["--offline_paths", "bags", "--termination", "drop"],
     "--termination 'drop': expected one of learned, scripted, close, or '' (not recorded)"),
    (["--offline_paths", "bags", "--terminal-fraction", "0.5"],
     "unrecognized arguments: --terminal_fraction 0.5"),
])
def test_bad_options_are_one_line(bags, args, expected):
    with pytest.raises(UsageError) as err:
        parse_train_config(args)
    assert expected in str(err.value) and "\n" not in str(err.value)
