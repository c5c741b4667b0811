"""``qtopt`` refuses bad input before it creates anything (issue 17): one ``qtopt: error: ...``
line naming the value and what was expected, exit status 2, no traceback, no run folder; the
parser and these checks import neither torch nor rclpy nor pybullet; every flag has help.

Timings (``--help`` under 1 s, errors under 2 s) are measured by bench/bench_cli_startup.py,
not here."""

from __future__ import annotations

import argparse
import dataclasses
import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from qtopt_learner.app.cli import build_parser, main
from qtopt_learner.app.input_checks import changed_fields, check_offline, check_same_config
from qtopt_learner.app.main_job_config import MainJobConfig
from qtopt_policy.cem import CEMConfig
from qtopt_policy.config_files import load_config, save_config
from qtopt_policy.names import PRESET_NAMES
from qtopt_policy.qnetwork import PRESETS, QNetwork
from qtopt_policy.spec import ActionBounds, CameraSpec
from qtopt_policy.torchscript_model import ModelMetadata, export_model
from qtopt_policy.usage import UsageError

HEAVY = ("torch", "rclpy", "pybullet")


def _export(path: Path, preset: str, camera: CameraSpec | None = None) -> Path:
    torch.manual_seed(0)
    export_model(QNetwork(PRESETS[preset]).eval(), path,
                 ModelMetadata(preset, PRESETS[preset], ActionBounds(), CEMConfig(),
                               camera=camera))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A good sim model and every kind of bad file a user may pass as --model."""
    root = tmp_path_factory.mktemp("models")
    good = _export(root / "sim.pt", "sim")
    data = good.read_bytes()
    (root / "random.pt").write_bytes(bytes(range(256)) * 8)
    (root / "truncated.pt").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(good) as archive:  # flip a byte inside the largest member's data
        member = max(archive.infolist(), key=lambda i: i.file_size)
    name_length, extra_length = struct.unpack_from("<HH", data, member.header_offset + 26)
    flipped = bytearray(data)
    flipped[member.header_offset + 30 + name_length + extra_length + member.file_size // 2] ^= 1
    (root / "flipped.pt").write_bytes(bytes(flipped))
    torch.save({"weights": torch.zeros(2)}, root / "checkpoint.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(root / "foreign.pt"))
    _export(root / "sim96_no_camera.pt", "sim96")  # 96 px input, no camera recorded
    return {p.stem: p for p in root.glob("*.pt")}  # not the weights beside each export


# argv (MODEL/<name> is a file of the ``models`` fixture) -> what the one error line says
BAD_INPUTS = [
    (["cell", "--episodes", "-3"], "--episodes -3: expected an integer >= 1"),
    (["cell", "--episodes", "abc"], "--episodes abc: expected an integer >= 1"),
    (["cell", "--cells", "0"], "--cells 0: expected an integer >= 1"),
    (["cell", "--seed", "-1"], "--seed -1: expected an integer >= 0"),
    (["cell", "--seed", "1.5"], "--seed 1.5: expected an integer >= 0"),
    (["cell", "--policy", "best"], "--policy invalid choice: 'best'"),
    (["cell", "--epsiodes", "3"], "unrecognized arguments: --epsiodes 3"),
    (["cell", "--policy", "greedy"], "--policy greedy: needs --model"),
    (["cell", "--model", "MODEL/sim"], "unused by --policy scripted"),
    (["cell", "--policy", "greedy", "--model", "MODEL/random"], "not a TorchScript archive"),
    (["cell", "--policy", "greedy", "--model", "MODEL/truncated"], "not a TorchScript archive"),
    (["cell", "--policy", "greedy", "--model", "MODEL/flipped"], "fails its checksum"),
    (["cell", "--policy", "noisy", "--model", "MODEL/checkpoint"], "holds no TorchScript code"),
    (["cell", "--policy", "noisy", "--model", "MODEL/foreign"], "not a qtopt model"),
    (["cell", "--policy", "noisy", "--model", "missing.pt"], "missing.pt does not exist"),
    (["cell", "--policy", "noisy", "--model", "MODEL/sim96_no_camera"],
     "takes 96 px images, larger than the cell's 72x72 px frames"),
    (["cell", "--out", "a_file"], "--out a_file: not a folder"),
    (["sim", "--model", "MODEL/sim", "--run-dir", "r", "--steps", "-5"],
     "--steps -5: expected an integer >= 0"),
    (["sim", "--model", "MODEL/sim", "--run-dir", "r", "--seed", "-1"],
     "--seed -1: expected an integer >= 0"),
    (["sim", "--model", "MODEL/sim", "--run-dir", "r", "--preset", "sim96"],
     "a 'sim' model; expected a 'sim96' model"),
    (["sim", "--model", "MODEL/flipped", "--run-dir", "r"], "fails its checksum"),
    (["sim", "--run-dir", "r"], "the following arguments are required: --model"),
    (["sim", "--model", "MODEL/sim", "--run-dir", "r", "--offline", "nowhere"],
     "--offline nowhere: no such file or folder"),
    # qtopt train: LearnerConfig's fields (draccus), checked by the configs themselves
    (["train", "--offline-paths", "/nonexistent"],
     "--offline_paths /nonexistent: no such file or folder"),
    (["train", "--offline_paths", "empty"], "--offline_paths empty: holds no episode files"),
    (["train", "--offline_paths", "bags", "--steps", "-5"], "--steps -5: expected >= 0"),
    (["train", "--offline_paths", "bags", "--updaters", "0"], "--updaters 0: expected >= 1"),
    (["train", "--offline_paths", "bags", "--export-every", "0"],
     "--export_every 0: expected >= 1"),
    (["train", "--offline_paths", "bags", "--checkpoint-every", "x"],
     "--checkpoint_every: Couldn't parse 'x' into an int"),
    (["train", "--offline_paths", "bags", "--seed", "-2"], "--seed -2: expected >= 0"),
    (["train", "--offline_paths", "bags", "--run-dir", "a_file"],
     "--run_dir a_file: not a folder"),
    (["train", "--steps", "5"], "--offline_paths: none given"),
    # qtopt run: draccus options (either spelling), checked by MainJobConfig itself
    (["run", "--learned-share", "1.5"], "--learned_share 1.5: expected in [0, 1]"),
    (["run", "--cells", "-1"], "--cells -1: expected >= 0"),
    (["run", "--cells", "x"], "--cells: Couldn't parse 'x' into an int"),
    (["run", "--seed", "-1"], "--seed -1: expected >= 0"),
    (["run", "--bin_objects", "0"], "--bin_objects 0: expected in [1, 30]"),
    # a simulated bin holds 30 objects (names.MAX_BIN_OBJECTS)
    (["run", "--bin-objects", "31"], "--bin_objects 31: expected in [1, 30]"),
    (["run", "--eval-workers", "0"], "--eval_workers 0: expected >= 1"),
    (["run", "--offline-data", "empty"], "--offline_data empty: holds no episode files"),
    (["run", "--budget", "1h"], "--budget '1h': expected one of 15m, 2h, gpu, smoke"),
    (["run", "--ablation.reward", "bonus"],
     "--ablation.reward 'bonus': expected one of penalty, discount"),
    (["run", "--reward", "penalty"], "unrecognized arguments: --reward penalty"),
    (["run", "--cells"], "--cells expected one argument"),
    (["run", "--config", "missing.yaml"], "--config missing.yaml: no such file"),
    (["run", "--config", "a_file"], "--config a_file: expected a mapping of config fields"),
    (["run", "--config", "bad.yaml"], "--config bad.yaml: not valid YAML at line"),
    (["run", "--config", "extra.yaml"],
     "--config extra.yaml: The fields `cels` are not valid for MainJobConfig"),
    (["run", "--config", "extra.yaml", "--run-dir", "a_file"], "are not valid"),
    (["run", "--run-dir", "a_file"], "--run_dir a_file: not a folder"),
    (["cell", "--nope"], "unrecognized arguments: --nope"),
    (["eval", "--model", "MODEL/sim", "--attempts", "0"],
     "--attempts 0: expected an integer >= 1"),
    (["eval", "--model", "scripted", "--bins", "-1"], "--bins -1: expected an integer >= 0"),
    (["eval", "--model", "scripted", "--bin-objects", "31"],
     "--bin-objects 31: expected an integer in [1, 30]"),
    (["eval", "--model", "scripted", "--workers", "0"], "--workers 0: expected an integer >= 1"),
    (["eval", "--model", "missing.pt"], "--model: model file missing.pt does not exist"),
    (["eval", "--model", "MODEL/flipped"], "fails its checksum"),
    (["eval", "--model", "MODEL/sim", "--out", "a_file"], "--out a_file: not a folder"),
    (["eval", "--attempts", "4"], "the following arguments are required: --model"),
    (["export", "--format", "lerobot", "nowhere", "out"], "BAGS nowhere: no such file or folder"),
    (["export", "--format", "lerobot", "empty", "out"], "BAGS empty: holds no episode files"),
    (["export", "--format", "lerobot", "bags", "a_file"], "OUT a_file: not a folder"),
    (["export", "--format", "lerobot", "bags", "."], "OUT .: holds files but no dataset"),
    (["export", "--format", "lerobot", "bags"], "the following arguments are required: OUT"),
    (["export", "--format", "rlds", "bags", "out"], "--format invalid choice: 'rlds'"),
    (["export", "bags", "out"], "the following arguments are required: --format"),
    ([], "the following arguments are required: COMMAND"),
]


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    """A working folder with an empty folder, a folder with one episode file and a file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bags" / "bag0").mkdir(parents=True)
    (tmp_path / "bags" / "bag0" / "bag0_0.mcap").write_bytes(b"")
    (tmp_path / "a_file").write_text("")
    (tmp_path / "bad.yaml").write_text("cells: [3\n")
    (tmp_path / "extra.yaml").write_text("cels: 3\n")
    return tmp_path


def _tree(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def _fails(argv: list[str], capsys) -> str:
    """The one error line of ``qtopt argv``, after checking exit status 2 and no other output."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == "", (out, err)
    assert err.startswith("qtopt: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(("argv", "expected"), BAD_INPUTS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else "")
def test_bad_input_is_one_line_and_creates_nothing(argv, expected, models, cwd, capsys):
    argv = [str(models[a[6:]]) if a.startswith("MODEL/") else a for a in argv]
    before = _tree(cwd)
    assert expected in _fails(argv, capsys)
    assert _tree(cwd) == before


def test_a_run_folder_saved_with_other_options_is_refused(cwd, capsys):
    run = cwd / "runs" / "main"
    run.mkdir(parents=True)
    save_config(MainJobConfig(run_dir=str(run), budget="smoke", seed=3), run / "config.yaml")
    before = _tree(cwd)
    err = _fails(["run", "--run-dir", str(run), "--budget", "15m", "--seed", "3",
                  "--ablation.reward", "penalty"], capsys)
    assert f"--run_dir {run}: saved with other settings" in err
    assert 'budget: saved "smoke", given "15m"' in err
    assert 'ablation.reward: saved "discount", given "penalty"' in err
    assert "seed" not in err.replace("--seed", "")  # only the fields that differ
    assert _tree(cwd) == before


def test_a_resume_ignores_the_eval_workers_and_how_offline_paths_are_written(cwd, monkeypatch):
    """Only what changes the experiment refuses a resume: not the evaluation's processes, nor
    --offline bags named relative instead of absolute (they are saved resolved)."""
    from qtopt_learner.app import main_job

    run = cwd / "runs" / "main"
    run.mkdir(parents=True)
    saved = MainJobConfig(run_dir=str(run), eval_workers=2, offline_data=(str(cwd / "bags"),))
    save_config(saved, run / "config.yaml")

    class Started(Exception):
        pass

    def start(config):
        assert config.offline_data == (str(cwd / "bags"),)
        raise Started

    monkeypatch.setattr(main_job, "MainJob", start)
    with pytest.raises(Started):  # the check passed: the job would start
        main(["run", "--run-dir", str(run), "--eval-workers", "4", "--offline_data", "bags"])


def test_a_training_run_resumes_only_with_its_options_but_may_raise_its_steps(cwd, capsys,
                                                                             monkeypatch):
    from qtopt_learner.app.train_command import parse_train_config
    from qtopt_learner.distributed import engine

    run = cwd / "runs" / "off"
    run.mkdir(parents=True)
    saved = parse_train_config(["--offline_paths", "bags", "--run-dir", str(run), "--steps",
                                "100"])
    save_config(saved, run / "config.yaml")
    assert load_config(type(saved), run / "config.yaml") == saved
    before = _tree(cwd)
    err = _fails(["train", "--offline_paths", "bags", "--run-dir", str(run), "--updaters", "2"],
                 capsys)
    assert f"--run_dir {run}: saved with other settings (updaters: saved 1, given 2)" in err
    assert _tree(cwd) == before and load_config(type(saved), run / "config.yaml") == saved

    class Started(Exception):
        pass

    def start(config):
        assert config.steps == 500
        raise Started

    monkeypatch.setattr(engine, "make_learner", start)
    with pytest.raises(Started):  # more steps, the bags named absolute: the same run
        main(["train", "--offline_paths", str(cwd / "bags"), "--run-dir", str(run), "--steps",
              "500"])


def test_flag_types_have_their_config_fields_bounds():
    """The parser reads the bounds of the fields its flags set from the configs' source (it
    must not import torch); they are the ones the imported configs enforce."""
    import importlib

    from qtopt_policy.config_fields import numeric_field
    from qtopt_policy.usage import ValueType

    checked = set()
    for command in _commands(build_parser()).values():
        for action in command._actions:
            if isinstance(action.type, ValueType) and action.type.field:
                reference, name = action.type.field
                module, _, class_name = reference.partition(":")
                config = getattr(importlib.import_module(module), class_name)
                assert numeric_field(config, name) == (action.type.kind, action.type.bounds)
                assert action.type(str(action.default)) == action.default  # the default passes
                checked.add(f"{class_name}.{name}")
    assert {"MainJobConfig.bin_objects", "LearnerConfig.steps", "CellGraphConfig.cells",
            "EpisodeDriverConfig.seed"} <= checked


def test_config_comparison():
    saved = {"run_dir": "a", "budget": "smoke", "ablation": {"reward": "discount"},
             "offline_data": ["x"]}
    assert changed_fields(saved, dict(saved)) == []
    assert changed_fields(saved, {**saved, "cells": 2}) == ['cells: saved "(missing)", given 2']
    assert changed_fields(saved, {**saved, "ablation": {"reward": "penalty"}}) == [
        'ablation.reward: saved "discount", given "penalty"']


def test_resuming_with_the_same_options_passes(tmp_path):
    saved = {"run_dir": "a", "budget": "smoke", "offline_data": ["x"]}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    same = {"run_dir": "b", "budget": "smoke", "offline_data": ("x",), "cells": 0}
    check_same_config(tmp_path / "config.json", same, ignore=("run_dir",),
                      defaults={"cells": 0})  # a field added since counts as its default
    check_same_config(tmp_path / "missing.json", {"budget": "2h"})  # a new run folder
    with pytest.raises(UsageError, match='cells: saved 0, given 2'):
        check_same_config(tmp_path / "config.json", {**same, "cells": 2}, ignore=("run_dir",),
                          defaults={"cells": 0})
    # a folder saved before configs were YAML: its config.json is checked in their place
    with pytest.raises(UsageError, match="cells: saved 0, given 2"):
        check_same_config(tmp_path / "config.yaml", {**same, "cells": 2}, ignore=("run_dir",),
                          defaults={"cells": 0})
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match="unreadable config.json"):
        check_same_config(tmp_path / "config.json", same)


def test_offline_paths_are_found_as_log_replay_finds_them(cwd):
    check_offline(["bags", "bags/bag0", "bags/bag0/bag0_0.mcap"])
    with pytest.raises(UsageError, match="--offline a_file: holds no episode files"):
        check_offline(["bags", "a_file"])


def test_cells_render_the_models_camera_and_refuse_a_model_larger_than_their_frames(
        tmp_path, models):
    from qtopt_collector.sim_cell import SimCellConfig
    from qtopt_policy.model_file import read_model_info

    camera = dataclasses.replace(SimCellConfig().camera(), width=104, height=104)
    trained = _export(tmp_path / "sim96.pt", "sim96", camera)
    assert SimCellConfig().for_model(str(trained)).camera() == camera
    assert SimCellConfig().for_model(read_model_info(trained)).camera() == camera  # read once
    older = str(models["sim96_no_camera"])  # records no camera: the 72 px default
    # a core config's error; the command line words it as one of its own (BAD_INPUTS)
    with pytest.raises(ValueError, match="takes 96 px images, larger than the cell's 72x72") as e:
        SimCellConfig().for_model(older)
    assert not isinstance(e.value, UsageError)


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_flag_has_help_and_shows_its_default():
    parser = build_parser()
    commands = _commands(parser)
    assert set(commands) == {"run", "cell", "sim", "train", "eval", "export"}
    for name, command in {"qtopt": parser, **commands}.items():
        for action in command._actions:
            assert action.help and action.help.strip(), (name, action.dest)
        text = " ".join(command.format_help().split())  # unwrapped
        for action in command._actions:
            if action.default not in (None, "", [], argparse.SUPPRESS) and not isinstance(
                    action.default, bool) and not action.required:
                assert f"(default: {action.default})" in text, (name, action.dest)


def test_preset_names_are_the_presets():
    from qtopt_learner.learner_config import TRAINER_PRESETS

    assert PRESET_NAMES == tuple(PRESETS) == tuple(TRAINER_PRESETS)


def test_help_and_input_errors_import_no_heavy_module(models):
    """``--help`` and the first-run checks stay light: torch, rclpy and pybullet take seconds
    to import."""
    code = f"""
import contextlib, io, sys
from qtopt_learner.app.cli import main
for argv in (["--help"], ["run", "--help"], ["cell", "--help"], ["sim", "--help"],
             ["train", "--help"], ["eval", "--help"], ["cell", "--episodes", "-3"],
             ["cell", "--cells", "0"], ["eval", "--model", "scripted", "--attempts", "0"],
             ["eval", "--model", {str(models["flipped"])!r}],
             ["train", "--offline_paths", "/nonexistent"],
             ["train", "--offline_paths", ".", "--steps", "-5"],
             ["cell", "--policy", "greedy", "--model", {str(models["flipped"])!r}],
             ["run", "--bin-objects", "31"], ["train", "--offline_paths", ".", "--updaters", "0"],
             ["sim", "--model", {str(models["sim"])!r}, "--run-dir", "r", "--preset", "paper"],
             ["export", "--help"], ["export", "--format", "lerobot", "/nonexistent", "out"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_the_command_exits_2_with_one_line_and_no_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "qtopt_learner.app.cli", "cell", "--episodes",
                          "-3"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 2
    assert out.stderr == "qtopt: error: --episodes -3: expected an integer >= 1\n"
    assert not list(tmp_path.iterdir())
