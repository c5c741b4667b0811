"""``qtopt eval`` end to end on an untrained model: both protocols of Sec. 6.1 for the model and
the scripted policy on the same seeds, in a cell rendering the model's camera, the table with
Wilson intervals and the margin with Newcombe's, the results folder, and a rerun into it that
runs no attempt again. Its bad inputs are rows of test_cli_errors.py's table."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from qtopt_collector import evaluation
from qtopt_collector.evaluation import bin_protocol, difference_interval
from qtopt_learner.app.cli import main
from qtopt_learner.app.main_job_config import MainJobConfig
from qtopt_policy.cem import CEMConfig
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import ModelMetadata, export_model

ATTEMPTS, BIN_OBJECTS, BIN_ATTEMPTS = 2, 2, 2


@pytest.fixture
def model(tmp_path) -> Path:
    """An untrained sim model that records a camera other than the evaluation cell's and
    training episodes ended by Algorithm 2 (not the main job's default rule)."""
    camera = dataclasses.replace(MainJobConfig(run_dir="").sim("test").camera(), width=80,
                                 height=80)
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    export_model(QNetwork(PRESETS["sim"]).eval(), path,
                 ModelMetadata("sim", PRESETS["sim"], ActionBounds(), CEMConfig(),
                               camera=camera, termination="scripted"))
    return path


def _seeds_by_key(log: Path) -> dict[str, set[int]]:
    seeds = defaultdict(set)
    for line in log.read_text().splitlines():
        row = json.loads(line)
        seeds[row["key"]].add(row["seed"])
    return seeds


@pytest.mark.slow
def test_a_model_and_the_scripted_policy_on_the_same_seeds(model, tmp_path, capsys,
                                                            monkeypatch):
    out = tmp_path / "eval"
    argv = ["eval", "--model", str(model), "--attempts", str(ATTEMPTS), "--bins", "1",
            "--bin-objects", str(BIN_OBJECTS), "--bin-attempts", str(BIN_ATTEMPTS),
            "--workers", "1", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    table = (out / "table.md").read_text()
    assert table in printed
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows] == ["| policy", f"| {model}", "| scripted"]
    assert f"**The model {model} " in table and "Newcombe's method" in table

    results = json.loads((out / "results.json").read_text())
    assert results["cell"]["camera_width"] == 80  # the camera the model was trained with
    episode = results["episode"]  # and the rule its episodes ended by
    assert episode["scripted_termination"] and not episode["close_ends_episode"]
    policies = results["policies"]
    assert list(policies) == [str(model), "scripted"]
    for record in policies.values():
        grasps = record["grasps"]
        assert grasps["attempts"] == ATTEMPTS
        rate = grasps["successes"] / ATTEMPTS
        low, high = record["interval"]
        assert low <= rate <= high
        assert f"{grasps['successes']}/{ATTEMPTS} = {rate:.1%} ({low:.1%}-{high:.1%})" in table
        assert len(record["bin_outcomes"]) == 1 and len(record["bin_outcomes"][0]) == 2
    m, s = (policies[name]["grasps"] for name in (str(model), "scripted"))
    margin = results["margin"]
    assert (margin["difference"], margin["low"], margin["high"]) == pytest.approx(
        difference_interval(m["successes"], ATTEMPTS, s["successes"], ATTEMPTS))
    assert margin["low"] <= margin["difference"] <= margin["high"]

    # every policy ran the same seeds under each protocol: the log's keys, by protocol
    by_protocol = defaultdict(list)
    for key, seeds in _seeds_by_key(out / "attempts.jsonl").items():
        by_protocol[key.rsplit(" ", 2)[0]].append(seeds)  # less policy and setup
    grasps_seeds = set(range(results["first_seeds"]["grasps"],
                             results["first_seeds"]["grasps"] + ATTEMPTS))
    bin_seeds = set(range(results["first_seeds"]["bins"],
                          results["first_seeds"]["bins"] + BIN_ATTEMPTS))
    assert by_protocol == {
        "grasps": [grasps_seeds] * 2,
        bin_protocol(BIN_OBJECTS, BIN_ATTEMPTS): [bin_seeds] * 2}

    # A rerun into the folder runs no attempt again and reports the same.
    def no_episode(*args, **kwargs):
        raise AssertionError("an attempt in the log ran again")

    monkeypatch.setattr(evaluation, "run_episode", no_episode)
    assert main(argv) == 0
    assert "resuming" in capsys.readouterr().out
    assert (out / "table.md").read_text() == table


def test_the_scripted_policy_alone(tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--model", "scripted", "--attempts", "1", "--bins", "0",
                 "--workers", "1", "--out", str(out)]) == 0
    lines = (out / "table.md").read_text().splitlines()
    # one row, no bin-emptying columns, no margin
    assert lines[0] == "| policy | grasps with replacement (95 % CI) | labeled | steps |"
    assert len(lines) == 3 and lines[2].startswith("| scripted | ")
    results = json.loads((out / "results.json").read_text())
    assert list(results["policies"]) == ["scripted"] and results["margin"] is None
    assert results["cell"]["camera_width"] == 72  # the main job's sim camera
