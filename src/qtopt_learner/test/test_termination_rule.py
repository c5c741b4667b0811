"""Every command runs a model in the MDP it was trained in: episodes end by the rule its
metadata records (``termination_for``), ``qtopt cell`` unless told otherwise, ``qtopt sim``'s
cells and learner alike; without a model, the main job's default rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from qtopt_collector.ros.cli import cell_graph_config, check_cell_arguments
from qtopt_learner.app.ablations import AblationConfig
from qtopt_learner.app.cli import build_parser, sim_graph_configs
from qtopt_policy.cem import CEMConfig
from qtopt_policy.model_file import read_model_info, termination_for
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import ModelMetadata, export_model


@pytest.fixture
def model(tmp_path) -> Path:
    """An untrained sim model whose training episodes ended by Algorithm 2, not the default."""
    torch.manual_seed(0)
    path = tmp_path / "model.pt"
    export_model(QNetwork(PRESETS["sim"]).eval(), path,
                 ModelMetadata("sim", PRESETS["sim"], ActionBounds(),
                               CEMConfig(learned_termination=False), termination="scripted"))
    return path


def test_a_model_runs_under_the_rule_it_records_and_an_old_one_under_the_learned_stop(model):
    info = read_model_info(model)
    assert termination_for(info) == "scripted"
    # an export from before models recorded their rule, when the learned stop was the default
    assert termination_for(dataclasses.replace(info, termination="")) == "learned"
    assert termination_for(None) == AblationConfig.termination == "close"  # no model


def test_qtopt_cell_ends_episodes_by_the_models_rule_unless_told(model, tmp_path):
    def episode(*options: str):
        args = build_parser().parse_args(["cell", "--out", str(tmp_path), *options])
        return cell_graph_config(args, check_cell_arguments(args)).episode

    served = ("--policy", "greedy", "--model", str(model))
    assert episode(*served).scripted_termination  # Algorithm 2, as the model records
    assert not episode(*served).close_ends_episode
    learned = episode(*served, "--termination", "learned")
    assert not learned.scripted_termination and not learned.close_ends_episode
    assert episode("--policy", "scripted").close_ends_episode  # the main job's default


@pytest.mark.parametrize("rule", ["scripted", "close", "learned"])
def test_qtopt_sim_fine_tunes_a_model_in_its_own_mdp(model, tmp_path, rule):
    info = dataclasses.replace(read_model_info(model), termination=rule)
    args = build_parser().parse_args(["sim", "--model", str(model), "--run-dir",
                                      str(tmp_path / "run")])
    cells, learner = sim_graph_configs(args, info)
    assert cells.episode.scripted_termination == (rule != "learned")
    assert cells.episode.close_ends_episode == (rule == "close")
    # the Bellman targets score the stop only where the policy can stop
    assert learner.updater.cem.learned_termination == (rule == "learned")
    assert learner.termination == rule  # and its exports record the rule
