"""``qtopt export --format lerobot``: rosbag2 episodes as a LeRobot v3.0 dataset, read back by
pyarrow and OpenCV and by LeRobot's own loader (lerobot 0.4.4), frame for frame against the
bags."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig, read_episodes
from qtopt_learner.app.cli import main
from qtopt_learner.lerobot_export import (
    DATA_PATH,
    ChunkedParquetWriter,
    ExportError,
    export_lerobot,
    image_stats,
)
from qtopt_policy.episode_record import EpisodeRecord
from qtopt_policy.spec import Action

from .chain_mdp import episodes

ROOT = Path(__file__).resolve().parents[3]
READER = ROOT / "build" / "lerobot_reader"
# LeRobot 0.4.4 and what its dataset loader imports that the venv lacks, at versions inside its
# requirements; --no-deps keeps the venv's torch, numpy, pyarrow and pillow.
READER_PACKAGES = (
    "lerobot==0.4.4", "datasets==4.8.5", "huggingface-hub==0.35.3", "pandas==2.3.3",
    "pytz==2026.6", "av==15.1.0", "accelerate==1.15.0", "psutil==7.2.2", "dill==0.4.1",
    "multiprocess==0.70.19", "xxhash==4.1.0", "httpx==0.28.1", "httpcore==1.0.9",
    "h11==0.16.0", "anyio==4.16.0", "sniffio==1.3.1",
)
# torchvision is the one import that cannot be installed: PyPI's wheels are CUDA builds whose
# C extension needs libtorch_cuda, which the venv's CPU torch lacks, and torchvision then fails
# at import. LeRobot's image path uses only transforms.ToTensor; this stands in for it.
TORCHVISION = {
    "__init__.py": "from torchvision import transforms  # noqa: F401\n",
    "transforms.py": (
        "import numpy as np\nimport torch\n\n\nclass ToTensor:\n"
        "    def __call__(self, picture):\n"
        "        array = np.array(picture, dtype=np.float32) / 255\n"
        "        return torch.from_numpy(array).permute(2, 0, 1).contiguous()\n"),
}
ACTION_NAMES = ["world_vector_x", "world_vector_y", "world_vector_z", "vertical_rotation_sin",
                "vertical_rotation_cos", "gripper_close", "gripper_open", "terminate"]
STATE_NAMES = ["gripper_closed", "height_to_bottom"]


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> Path:
    """Two cells' bags: 11 episodes of cell0 (so file _10 follows _9), 2 of cell1; random
    actions, episodes of one or two steps, some successful."""
    root = tmp_path_factory.mktemp("bags")
    for cell, count, seed in (("cell0", 11, 0), ("cell1", 2, 100)):
        recorder = BagRecorder(RecorderConfig(out_dir=str(root / cell), cell_id=cell))
        for record in episodes(count, seed):
            recorder.write(record)
    return root


@pytest.fixture(scope="module")
def exported(bags, tmp_path_factory) -> tuple[Path, list[EpisodeRecord]]:
    """The dataset ``qtopt export`` writes, and the bags' episodes in recording order."""
    out = tmp_path_factory.mktemp("export") / "dataset"
    assert main(["export", "--format", "lerobot", str(bags / "cell0"), str(bags / "cell1"),
                 str(out)]) == 0
    by_id = {r.episode_id: r for r in read_episodes(bags)}
    order = [f"cell0-{seed}" for seed in range(11)] + ["cell0-100", "cell0-101"]
    return out, [by_id[episode_id] for episode_id in order]


def action_entries(action: Action) -> dict[str, float]:
    """The spec's action vector entries by name, computed without the spec's codec."""
    x, y, z = action.translation
    return {"world_vector_x": x, "world_vector_y": y, "world_vector_z": z,
            "vertical_rotation_sin": math.sin(action.rotation),
            "vertical_rotation_cos": math.cos(action.rotation),
            "gripper_close": float(action.gripper_close),
            "gripper_open": float(not action.gripper_close),
            "terminate": float(action.terminate)}


def check_frames(frames: dict[str, np.ndarray], features: dict, records: list[EpisodeRecord]
                 ) -> None:
    """Every frame of ``frames`` (columns as a reader returns them) is the step of the bags'
    episodes that it should be, value for value."""
    steps = [(e, i, step, len(r.steps)) for e, r in enumerate(records)
             for i, step in enumerate(r.steps)]
    assert len(frames["index"]) == len(steps)
    np.testing.assert_array_equal(frames["observation.image"],
                                  np.stack([s.observation.image for _, _, s, _ in steps]))
    names = features["action"]["names"]
    np.testing.assert_allclose(frames["action"], [[action_entries(s.action)[name]
                                                   for name in names] for _, _, s, _ in steps],
                               atol=1e-6)
    assert features["observation.state"]["names"] == STATE_NAMES
    np.testing.assert_allclose(frames["observation.state"], [
        [float(s.observation.gripper_closed), s.observation.height_to_bottom]
        for _, _, s, _ in steps], atol=1e-6)
    np.testing.assert_allclose(frames["next.reward"], [s.reward for _, _, s, _ in steps],
                               atol=1e-6)
    np.testing.assert_array_equal(frames["next.done"], [i == n - 1 for _, i, _, n in steps])
    np.testing.assert_array_equal(frames["episode_index"], [e for e, _, _, _ in steps])
    np.testing.assert_array_equal(frames["frame_index"], [i for _, i, _, _ in steps])
    np.testing.assert_array_equal(frames["timestamp"], [float(i) for _, i, _, _ in steps])
    np.testing.assert_array_equal(frames["index"], np.arange(len(steps)))
    np.testing.assert_array_equal(frames["task_index"], 0)


def test_the_dataset_holds_the_bags_frames_as_lerobot_lays_them_out(exported):
    out, records = exported
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 1
    assert info["total_episodes"] == 13 and info["total_tasks"] == 1
    assert info["total_frames"] == sum(len(r.steps) for r in records)
    features = info["features"]
    assert features["action"]["names"] == ACTION_NAMES
    assert features["observation.image"] == {"dtype": "image", "shape": [72, 72, 3],
                                             "names": ["height", "width", "channels"]}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet",
        "meta/info.json", "meta/stats.json", "meta/tasks.parquet"]

    data = pq.read_table(out / info["data_path"].format(chunk_index=0, file_index=0))
    assert data.column_names == list(features)
    for name, feature in features.items():  # the types LeRobot's loader casts the columns to
        expected = {"image": pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
                    "float32": pa.float32(), "bool": pa.bool_(), "int64": pa.int64()}[
                        feature["dtype"]]
        if feature["dtype"] != "image" and feature["shape"] != [1]:
            expected = pa.list_(expected, feature["shape"][0])
        assert data.schema.field(name).type == expected, name
    frames = {name: np.array(data.column(name).to_pylist()) for name in features
              if name != "observation.image"}
    frames["observation.image"] = np.stack([  # PNG bytes, decoded by OpenCV
        cv2.cvtColor(cv2.imdecode(np.frombuffer(image["bytes"], np.uint8), cv2.IMREAD_COLOR),
                     cv2.COLOR_BGR2RGB) for image in data.column("observation.image").to_pylist()])
    check_frames(frames, features, records)

    episodes_table = pq.read_table(out / "meta/episodes").to_pylist()
    lengths = [len(r.steps) for r in records]
    assert [e["episode_id"] for e in episodes_table] == [r.episode_id for r in records]
    assert [e["success"] for e in episodes_table] == [r.success for r in records]
    assert any(r.success for r in records) and not all(r.success for r in records)
    assert [e["dataset_from_index"] for e in episodes_table] == list(np.cumsum([0] + lengths[:-1]))
    assert [e["dataset_to_index"] for e in episodes_table] == list(np.cumsum(lengths))
    assert {e["tasks"][0] for e in episodes_table} == {"grasp an object from the bin"}

    stats = json.loads((out / "meta/stats.json").read_text())
    assert set(stats) == set(features)
    assert np.array(stats["observation.image"]["mean"]).shape == (3, 1, 1)
    assert np.array(stats["action"]["q50"]).shape == (8,)
    assert stats["next.done"]["count"] == [info["total_frames"]]
    assert np.array(stats["next.done"]["mean"]) == pytest.approx(13 / info["total_frames"])


def _install_reader() -> None:
    """LeRobot and its loader's imports into build/lerobot_reader, once per package list."""
    marker = READER / "packages.txt"
    wanted = "\n".join(READER_PACKAGES)
    if marker.is_file() and marker.read_text() == wanted:
        return
    staging = READER.with_name(READER.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--disable-pip-version-check", "--no-compile",
                    "--target", str(staging), *READER_PACKAGES], check=True, timeout=600)
    for name, text in TORCHVISION.items():
        (staging / "torchvision").mkdir(exist_ok=True)
        (staging / "torchvision" / name).write_text(text)
    (staging / marker.name).write_text(wanted)
    shutil.rmtree(READER, ignore_errors=True)
    staging.rename(READER)


@pytest.mark.slow
def test_lerobot_dataset_loads_the_export_frame_for_frame(exported, tmp_path):
    out, records = exported
    _install_reader()
    loaded = tmp_path / "loaded.npz"
    env = {**os.environ, "PYTHONPATH": str(READER), "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, str(Path(__file__).with_name("lerobot_reader.py")),
                    str(out), str(loaded)], check=True, env=env, timeout=300)
    with np.load(loaded) as saved:
        frames = {name: saved[name] for name in saved.files if name != "info"}
        info = json.loads(str(saved["info"]))
    assert info["len"] == sum(len(r.steps) for r in records)
    assert info["num_episodes"] == len(records) and info["fps"] == 1
    check_frames(frames, info["features"], records)
    assert info["tasks"] == ["grasp an object from the bin"] * info["len"]
    episodes_meta = info["episodes"]
    assert episodes_meta["episode_id"] == [r.episode_id for r in records]
    assert episodes_meta["success"] == [r.success for r in records]
    # LeRobot pads a window past the episode's ends: the first frame has no previous one, the
    # last (next.done) no next one
    first, last = frames["frame_index"] == 0, frames["next.done"]
    np.testing.assert_array_equal(frames["action_is_pad"],
                                  np.stack([first, np.zeros_like(first), last], axis=1))
    # the dataset stats are what LeRobot aggregates from the episodes' stats
    for name, stats in info["lerobot_aggregated_stats"].items():
        for key, value in stats.items():
            np.testing.assert_allclose(info["stats"][name][key], value, rtol=1e-9,
                                       err_msg=f"{name} {key}")


def test_image_stats_are_numpys_over_the_pixels():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(3)]
    stats = image_stats(images)
    pixels = np.stack(images).reshape(-1, 3) / 255.0
    expected = {"min": pixels.min(0), "max": pixels.max(0), "mean": pixels.mean(0),
                "std": pixels.std(0)}
    expected |= {f"q{round(q * 100):02d}": np.quantile(pixels, q, axis=0)
                 for q in (0.01, 0.10, 0.50, 0.90, 0.99)}
    for key, value in expected.items():
        np.testing.assert_allclose(stats[key], value.reshape(3, 1, 1), atol=1e-12,
                                   err_msg=key)
    assert stats["count"].tolist() == [3]


def test_damaged_files_are_skipped_and_mixed_cameras_refused_leaving_nothing(bags, tmp_path):
    shutil.copytree(bags / "cell1", tmp_path / "bags")
    (tmp_path / "bags" / "junk.mcap").write_bytes(b"not an MCAP file")
    result = export_lerobot([tmp_path / "bags"], tmp_path / "ok", progress=False)
    assert (result.episodes, result.files, result.skipped) == (2, 3, 1)

    record = episodes(1, seed=7)[0]

    def cropped(observation):
        return dataclasses.replace(observation, image=observation.image[:16, :16].copy())

    other = dataclasses.replace(
        record, episode_id="small", final_observation=cropped(record.final_observation),
        steps=[dataclasses.replace(s, observation=cropped(s.observation)) for s in record.steps])
    BagRecorder(RecorderConfig(out_dir=str(tmp_path / "bags" / "zz"))).write(other)
    with pytest.raises(ExportError, match=r"'small' has 16x16 px frames: expected 72x72 px"):
        export_lerobot([tmp_path / "bags"], tmp_path / "mixed", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bags", "ok"]


def test_a_dataset_is_replaced_only_with_overwrite(bags, tmp_path, capsys):
    """(The other bad BAGS and OUT are rows of test_cli_errors.BAD_INPUTS.)"""
    out = tmp_path / "dataset"
    assert main(["export", "--format", "lerobot", str(bags / "cell1"), str(out)]) == 0
    with pytest.raises(SystemExit) as stop:
        main(["export", "--format", "lerobot", str(bags), str(out)])
    assert stop.value.code == 2
    assert f"OUT {out}: holds a dataset already (meta/info.json)" in capsys.readouterr().err
    assert json.loads((out / "meta/info.json").read_text())["total_episodes"] == 2
    assert main(["export", "--format", "lerobot", str(bags), str(out), "--overwrite"]) == 0
    assert json.loads((out / "meta/info.json").read_text())["total_episodes"] == 13
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # no partial folder


def test_files_rotate_past_their_size_and_chunks_past_their_file_count(tmp_path):
    writer = ChunkedParquetWriter(tmp_path, DATA_PATH, file_size_mb=1, chunk_size=2)
    table = pa.table({"x": np.zeros(100_000, np.float64)})  # 0.8 MB: one per file
    placed = []
    for _ in range(3):
        placed.append(writer.place(table.nbytes))
        writer.write(table)
    writer.close()
    assert placed == [(0, 0), (0, 1), (1, 0)]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")) == [
        "data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet",
        "data/chunk-001/file-000.parquet"]
