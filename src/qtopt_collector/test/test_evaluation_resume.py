"""An interrupted evaluation continues from its finished attempts: the attempt log, its keys,
which attempts and bins remain, and a resumed evaluation equal to an uninterrupted one."""

import os

import pytest
import torch

from qtopt_collector import evaluation
from qtopt_collector.episode import EpisodeConfig
from qtopt_collector.evaluation import (
    Attempt,
    AttemptLog,
    attempt_key,
    bin_emptying,
    bin_protocol,
    evaluate,
    unfinished,
)
from qtopt_collector.sim_cell import SimCellConfig
from qtopt_policy.cem import CEMConfig
from qtopt_policy.policies import PolicySource
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import ActionBounds
from qtopt_policy.torchscript_model import ModelMetadata, export_model

SCRIPTED = PolicySource(local="scripted")
# A cheap cell: small frames, few objects, the simulator's label without the drop test.
CELL = SimCellConfig(object_split="test", label="truth", substeps=20, max_objects=2,
                     camera_width=32, camera_height=32)
EPISODE = EpisodeConfig(max_steps=12)
RUN_EPISODE = evaluation.run_episode


def test_unfinished_units_by_hand():
    assert unfinished([[1], [2], [3]], {2}) == [[1], [3]]
    assert unfinished([[1, 2], [3, 4], [5, 6]], [1, 2, 3, 6]) == [[3, 4], [5, 6]]
    assert unfinished([[1, 2]], set()) == [[1, 2]]
    assert unfinished([], {1}) == []


def test_the_log_keeps_attempts_per_key_and_drops_a_torn_line(tmp_path):
    log = AttemptLog(tmp_path / "attempts.jsonl")
    assert log.load("a") == {}
    log.append("a", [Attempt(1, True, False, 5), Attempt(2, False, False, 20)])
    log.append("b", [Attempt(1, False, False, 3)])
    with open(log.path, "ab") as f:  # a kill in the middle of a line
        f.write(b'{"key": "a", "seed": 3, "succ')
    assert log.load("a") == {1: Attempt(1, True, False, 5), 2: Attempt(2, False, False, 20)}
    assert log.path.read_bytes().endswith(b"\n")  # cut, so the next line starts clean
    log.append("a", [Attempt(3, True, True, 7), Attempt(1, False, True, 9)])
    assert log.load("a") == {1: Attempt(1, False, True, 9), 2: Attempt(2, False, False, 20),
                             3: Attempt(3, True, True, 7)}  # the latest line of a seed wins
    assert log.load("b") == {1: Attempt(1, False, False, 3)}


def test_the_log_syncs_its_folder_when_it_creates_the_file(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(
        os.readlink(f"/proc/self/fd/{fd}")) or fsync(fd))
    log = AttemptLog(tmp_path / "attempts.jsonl")
    log.append("a", [Attempt(1, True, False, 5)])
    assert synced == [str(log.path), str(tmp_path)]  # the new file's entry is on disk too
    log.append("a", [Attempt(2, True, False, 5)])
    assert synced[2:] == [str(log.path)]


def _export(path, seed: int) -> str:
    torch.manual_seed(seed)
    export_model(QNetwork(PRESETS["sim"]).eval(), path,
                 ModelMetadata("sim", PRESETS["sim"], ActionBounds(), CEMConfig(), 1, 1))
    return str(path)


def test_keys_tell_models_by_content_protocols_and_settings_apart(tmp_path):
    a = PolicySource(model_path=_export(tmp_path / "a.pt", 0))
    key = attempt_key("grasps", a, CELL, EPISODE)
    os.replace(a.model_path, tmp_path / "moved.pt")  # the same model elsewhere
    assert attempt_key("grasps", PolicySource(model_path=str(tmp_path / "moved.pt")), CELL,
                       EPISODE) == key
    _export(tmp_path / "a.pt", 1)  # another model under the same name
    assert attempt_key("grasps", a, CELL, EPISODE) != key
    others = {attempt_key("grasps", SCRIPTED, CELL, EPISODE),
              attempt_key(bin_protocol(3, 30), SCRIPTED, CELL, EPISODE),
              attempt_key("grasps", SCRIPTED, CELL, EpisodeConfig(max_steps=13)),
              attempt_key("grasps", PolicySource(local="scripted_noisy"), CELL, EPISODE)}
    assert len(others) == 4


class _Killed(Exception):
    """What a kill of the evaluation looks like to the test."""


def _kill_after(monkeypatch, episodes: int) -> list[int]:
    """Run real episodes, but die when the next after ``episodes`` starts; returns the seeds
    run."""
    seeds = []

    def episode(cell, policy, seed, *args, **kwargs):
        if len(seeds) == episodes:
            raise _Killed
        seeds.append(seed)
        return RUN_EPISODE(cell, policy, seed, *args, **kwargs)

    monkeypatch.setattr(evaluation, "run_episode", episode)
    return seeds


def test_an_interrupted_evaluation_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    log = AttemptLog(tmp_path / "attempts.jsonl")
    ran = _kill_after(monkeypatch, 2)
    with pytest.raises(_Killed):
        evaluate(SCRIPTED, 4, seed=5, cell_config=CELL, episode_config=EPISODE, log=log,
                 progress=False)
    ran = _kill_after(monkeypatch, 100)
    resumed = evaluate(SCRIPTED, 4, seed=5, cell_config=CELL, episode_config=EPISODE, log=log,
                       progress=False)
    assert ran == [7, 8]  # the two finished attempts are not run again
    monkeypatch.undo()
    uninterrupted = AttemptLog(tmp_path / "fresh.jsonl")
    fresh = evaluate(SCRIPTED, 4, seed=5, cell_config=CELL, episode_config=EPISODE,
                     log=uninterrupted, progress=False)
    key = attempt_key("grasps", SCRIPTED, CELL, EPISODE)
    assert resumed == fresh and log.load(key) == uninterrupted.load(key)  # seed alone counts
    with pytest.raises(ValueError, match="attempt log with a Policy object"):
        evaluate(SCRIPTED.make(), 1, log=log, progress=False)


def test_a_bin_is_kept_once_empty_and_an_interrupted_one_runs_again(tmp_path, monkeypatch):
    log = AttemptLog(tmp_path / "attempts.jsonl")
    kwargs = dict(objects=2, attempts=2, bins=2, seed=50, cell_config=CELL,
                  episode_config=EPISODE, log=log, progress=False)
    ran = _kill_after(monkeypatch, 3)  # the first bin, then into the second
    with pytest.raises(_Killed):
        bin_emptying(SCRIPTED, **kwargs)
    key = attempt_key(bin_protocol(2, 2), SCRIPTED, CELL, EPISODE)
    assert sorted(log.load(key)) == [50, 51]
    ran = _kill_after(monkeypatch, 100)
    result = bin_emptying(SCRIPTED, **kwargs)
    assert ran == [52, 53] and len(result.outcomes) == 2
    # One attempt per bin: seeds 50 and 51 are now two bins, each emptied from full, and the
    # attempts of the two-attempt bin above must not count for them.
    ran = _kill_after(monkeypatch, 100)
    bin_emptying(SCRIPTED, **{**kwargs, "attempts": 1})
    assert ran == [50, 51]
