"""``qtopt run``'s options are MainJobConfig's fields (issue 18, one config system): every field
has help from its comment, a run folder's config.yaml is a ``--config`` that rebuilds the
same config, and options beside it win."""

from __future__ import annotations

import dataclasses

import pytest

from qtopt_learner.app import main_job
from qtopt_learner.app.ablations import AblationConfig
from qtopt_learner.app.cli import main
from qtopt_learner.app.main_job_config import MainJobConfig
from qtopt_policy.config_fields import field_comments
from qtopt_policy.config_files import load_config

MAIN_JOB = main_job.MainJob  # the fixture below replaces it


class _Started(Exception):
    pass


@pytest.fixture
def started(monkeypatch) -> list[MainJobConfig]:
    """The configs ``qtopt run`` would start the job with (the job itself is not run)."""
    configs: list[MainJobConfig] = []

    def start(config: MainJobConfig) -> None:
        configs.append(config)
        raise _Started

    monkeypatch.setattr(main_job, "MainJob", start)
    return configs


def _run(*args: str) -> None:
    with pytest.raises(_Started):
        main(["run", *args])


def test_every_option_has_help_from_its_field_comment(capsys):
    for config in (MainJobConfig, AblationConfig):
        fields = {f.name for f in dataclasses.fields(config)}
        assert fields <= set(field_comments(config)), fields - set(field_comments(config))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "usage: qtopt run" in text and "--config" in text
    for option, comment in (("--budget str", "2h: the long CPU run"),
                            ("--ablation.termination str", "scripted: Algorithm 2"),
                            ("--offline_data", "replayed beside the live episodes")):
        assert option in text and comment in text, option


def test_a_run_folders_config_reproduces_the_run(tmp_path, started, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bags = tmp_path / "bags" / "bag0"
    bags.mkdir(parents=True)
    (bags / "bag0_0.mcap").write_bytes(b"")
    # the run as a user starts it, with options of every kind
    _run("--run-dir", "first", "--budget", "smoke", "--seed", "4", "--cells", "1",
         "--learned_share", "0.25", "--offline-data", "bags", "--ablation.termination",
         "scripted", "--ablation.reward", "penalty")
    first = started[-1]
    assert first.offline_data == (str(tmp_path / "bags"),)  # kept resolved
    main_job_config = real_main_job(first)  # what the job saves in its folder
    saved = tmp_path / "first" / "config.yaml"
    assert load_config(MainJobConfig, saved) == main_job_config

    assert first.run_dir == str(tmp_path / "first")  # absolute, as the bags

    _run("--config", str(saved), "--run_dir", "second")  # the same run in a new folder
    assert started[-1] == dataclasses.replace(first, run_dir=str(tmp_path / "second"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _run("--config", str(saved))  # its own folder, from anywhere: a resume
    assert started[-1] == first
    _run("--config", str(saved), "--run_dir", "third", "--ablation.reward", "discount")
    assert started[-1] == dataclasses.replace(
        first, run_dir=str(elsewhere / "third"),
        ablation=dataclasses.replace(first.ablation, reward="discount"))


def real_main_job(config: MainJobConfig) -> MainJobConfig:
    """The job's own bookkeeping of ``config`` (its run folder, its config.yaml), no phase
    run."""
    return MAIN_JOB(config, progress=False).config


def test_an_edited_config_that_changes_the_experiment_is_refused_on_resume(
        tmp_path, started, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _run("--run_dir", "r", "--budget", "smoke")
    real_main_job(started[-1])
    edited = tmp_path / "edited.yaml"
    edited.write_text((tmp_path / "r" / "config.yaml").read_text().replace(
        "budget: smoke", "budget: 15m"))
    with pytest.raises(SystemExit):
        main(["run", "--config", str(edited)])
    err = capsys.readouterr().err
    assert 'budget: saved "smoke", given "15m"' in err and err.count("\n") == 1
