"""Recorded episodes as a LeRobot dataset, written with pyarrow alone.

The layout is LeRobot's codebase version v3.0, the one ``lerobot`` 0.4.4 reads
(``LeRobotDataset(repo_id, root=OUT)``)::

    meta/info.json        fps, features (dtype, shape, names), totals, path templates
    meta/stats.json       per feature: min, max, mean, std, count, q01 q10 q50 q90 q99
    meta/tasks.parquet    the one task; task strings as the pandas index, as LeRobot writes it
    meta/episodes/chunk-000/file-000.parquet   one row per episode: its frame range
                          [dataset_from_index, dataset_to_index), data file, stats/*, success
    data/chunk-000/file-000.parquet            one row per step

A frame is one step of an episode (Sec. 5): ``observation.image`` (PNG bytes in a
``{"bytes", "path"}`` struct, the Hugging Face ``Image`` feature, so no video codec is needed),
``observation.state`` (the spec's low-dim state), ``action`` (the spec's action vector),
``next.reward``, ``next.done`` (true on the last step) and LeRobot's index columns. An
episode's final observation, which follows its last action, is no frame: the last step is
terminal. The episode's grasp label is the ``success`` column of the episode table. Episodes
carry no capture times and the cell has no control rate (a step takes as long as CEM and the
arm take), so ``fps`` is 1 and a frame's ``timestamp`` is its step number.

Episodes are read as log replay reads them (App. F.2), through the same functions but without
its torch-based replay: a damaged file or a malformed episode is logged and skipped. The
dataset is built in a hidden sibling folder and renamed into place, so an interrupted export
leaves no half dataset behind.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from qtopt_collector.bag_files import episode_files
from qtopt_collector.bag_format import encode_image
from qtopt_collector.bag_recorder import EpisodeFileError, read_episode_file
from qtopt_policy.episode_record import EpisodeRecord
from qtopt_policy.spec import ACTION, LOW_DIM_STATE, VectorCodec

log = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
FPS = 1  # no control rate: see the module docstring
ROBOT_TYPE = "kuka_lbr_iiwa"
TASK = "grasp an object from the bin"  # QT-Opt's one task: any object counts (Sec. 5)
INFO_PATH = Path("meta/info.json")
STATS_PATH = Path("meta/stats.json")
TASKS_PATH = Path("meta/tasks.parquet")
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/" + CHUNK_FILE
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE
# LeRobot's defaults: a new file past this many MB, a new chunk folder past this many files.
FILE_SIZE_MB = 100
CHUNK_SIZE = 1000
VIDEO_FILE_SIZE_MB = 200  # info.json names it; these datasets have no videos
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
# LeRobot names each entry of a vector feature; the spec names blocks, these their entries.
ENTRY_NAMES = {"world_vector": ("x", "y", "z"), "vertical_rotation": ("sin", "cos")}
IMAGE = "observation.image"


class ExportError(ValueError):
    """Bags that make no dataset: no readable episode, or frames of different sizes."""


def entry_names(codec: VectorCodec) -> list[str]:
    """One name per entry of ``codec``'s vector, e.g. ``world_vector_x``, ``terminate``."""
    names = []
    for f in codec.fields:
        names += [f.name] if f.size == 1 else [f"{f.name}_{e}" for e in ENTRY_NAMES[f.name]]
    return names


def lerobot_features(image_shape: tuple[int, int, int]) -> dict[str, dict]:
    """info.json's ``features``: LeRobot's dtype, shape and entry names of every column, in
    column order (LeRobot's own index columns last, as it adds them)."""
    scalar = {"shape": [1], "names": None}
    return {
        IMAGE: {"dtype": "image", "shape": list(image_shape),
                "names": ["height", "width", "channels"]},
        "observation.state": {"dtype": "float32", "shape": [LOW_DIM_STATE.size],
                              "names": entry_names(LOW_DIM_STATE)},
        "action": {"dtype": "float32", "shape": [ACTION.size], "names": entry_names(ACTION)},
        "next.reward": {"dtype": "float32", **scalar},
        "next.done": {"dtype": "bool", **scalar},
        "timestamp": {"dtype": "float32", **scalar},
        "frame_index": {"dtype": "int64", **scalar},
        "episode_index": {"dtype": "int64", **scalar},
        "index": {"dtype": "int64", **scalar},
        "task_index": {"dtype": "int64", **scalar},
    }


def _arrow_field(name: str, feature: dict) -> pa.Field:
    if feature["dtype"] == "image":  # the Hugging Face Image feature's storage
        return pa.field(name, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    value = pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    size = feature["shape"][0]
    return pa.field(name, value if feature["shape"] == [1] else pa.list_(value, size))


def _hf_feature(feature: dict) -> dict:
    """The Hugging Face ``datasets`` (4.x) feature that LeRobot makes of ``feature``."""
    if feature["dtype"] == "image":
        return {"_type": "Image"}
    value = {"dtype": feature["dtype"], "_type": "Value"}
    if feature["shape"] == [1]:
        return value
    return {"feature": value, "length": feature["shape"][0], "_type": "List"}


def data_schema(features: dict[str, dict]) -> pa.Schema:
    """The data files' schema, with the ``huggingface`` metadata that ``datasets`` (and the
    Hub's viewer) read to decode the image column as images."""
    hf = {"info": {"features": {name: _hf_feature(f) for name, f in features.items()}}}
    return pa.schema([_arrow_field(name, f) for name, f in features.items()],
                     metadata={"huggingface": json.dumps(hf)})


def _arrow_column(values: np.ndarray | list, type_: pa.DataType) -> pa.Array:
    if pa.types.is_fixed_size_list(type_):  # [frames, size] arrays: pyarrow takes 1-D only
        return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), type_.value_type),
                                                 type_.list_size)
    return pa.array(values, type_)


def episode_columns(record: EpisodeRecord, episode_index: int, first_index: int
                    ) -> dict[str, np.ndarray | list]:
    """The frames of one episode, column by column (images still as arrays)."""
    steps = record.steps
    n = len(steps)
    frame_index = np.arange(n, dtype=np.int64)
    return {
        IMAGE: [s.observation.image for s in steps],
        "observation.state": LOW_DIM_STATE.encode_batch(s.observation for s in steps),
        "action": np.stack([s.action.to_vector() for s in steps]).astype(np.float32),
        "next.reward": np.array([s.reward for s in steps], dtype=np.float32),
        "next.done": np.array([s.done for s in steps], dtype=bool),
        "timestamp": (frame_index / FPS).astype(np.float32),
        "frame_index": frame_index,
        "episode_index": np.full(n, episode_index, dtype=np.int64),
        "index": first_index + frame_index,
        "task_index": np.zeros(n, dtype=np.int64),
    }


def _histogram_quantile(counts: np.ndarray, q: float) -> float:
    """``np.quantile`` (linear) of the values whose counts per value 0..255 are ``counts``."""
    position = q * (counts.sum() - 1)
    cumulative = np.cumsum(counts)
    low, high = (int(np.searchsorted(cumulative, k, side="right"))
                 for k in (np.floor(position), np.ceil(position)))
    return low + (position - np.floor(position)) * (high - low)


def image_stats(images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-channel stats of uint8 RGB frames scaled to [0, 1], each of shape (3, 1, 1) as
    LeRobot keeps them; exact, from per-channel histograms of the 256 pixel values."""
    pixels = np.stack(images).reshape(-1, 3)
    counts = np.stack([np.bincount(pixels[:, c], minlength=256) for c in range(3)])
    values = np.arange(256, dtype=np.float64)
    total = counts.sum(axis=1)
    mean = counts @ values / total
    stats = {
        "min": np.array([np.flatnonzero(c)[0] for c in counts], dtype=np.float64),
        "max": np.array([np.flatnonzero(c)[-1] for c in counts], dtype=np.float64),
        "mean": mean,
        "std": np.sqrt((counts * (values - mean[:, None]) ** 2).sum(axis=1) / total),
    }
    stats |= {_quantile_key(q): np.array([_histogram_quantile(c, q) for c in counts])
              for q in QUANTILES}
    stats = {k: (v / 255.0).reshape(3, 1, 1) for k, v in stats.items()}
    return stats | {"count": np.array([len(images)])}


def _quantile_key(q: float) -> str:
    return f"q{round(q * 100):02d}"


def vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-entry stats over frames (axis 0) of a [frames] or [frames, size] column; a scalar
    column's stats have shape (1,)."""
    values = values.astype(np.float64).reshape(len(values), -1)
    stats = {"min": values.min(axis=0), "max": values.max(axis=0),
             "mean": values.mean(axis=0), "std": values.std(axis=0)}
    stats |= {_quantile_key(q): np.quantile(values, q, axis=0) for q in QUANTILES}
    return stats | {"count": np.array([len(values)])}


def episode_stats(columns: dict[str, np.ndarray | list]) -> dict[str, dict[str, np.ndarray]]:
    return {name: image_stats(values) if name == IMAGE else vector_stats(values)
            for name, values in columns.items()}


def _weighted_mean(values: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    return np.tensordot(weights, np.stack(values), axes=1)


def aggregate_stats(stats: Sequence[dict[str, dict[str, np.ndarray]]]
                    ) -> dict[str, dict[str, np.ndarray]]:
    """The stats of the union of sets of frames (episodes, or the episodes so far and the next)
    as LeRobot aggregates them: min of mins, max of maxes, count-weighted mean, pooled std and
    count-weighted means of the quantiles. Aggregating one set at a time gives the same."""
    result = {}
    for name in stats[0]:
        parts = [s[name] for s in stats]
        counts = np.array([p["count"][0] for p in parts])
        weights = counts / counts.sum()
        mean = _weighted_mean([p["mean"] for p in parts], weights)
        result[name] = {
            "min": np.min([p["min"] for p in parts], axis=0),
            "max": np.max([p["max"] for p in parts], axis=0),
            "mean": mean,
            "std": np.sqrt(_weighted_mean([p["std"] ** 2 + (p["mean"] - mean) ** 2
                                           for p in parts], weights)),
            "count": np.array([counts.sum()]),
        } | {_quantile_key(q): _weighted_mean([p[_quantile_key(q)] for p in parts], weights)
             for q in QUANTILES}
    return result


def _json_ready(stats: dict[str, np.ndarray]) -> dict[str, list]:
    return {key: value.tolist() for key, value in stats.items()}


class ChunkedParquetWriter:
    """Tables appended to LeRobot's ``chunk-XXX/file-YYY.parquet`` series under ``root``: a
    table stays in one file, and the next file starts once a file holds ``file_size_mb``."""

    def __init__(self, root: Path, template: str, file_size_mb: int = FILE_SIZE_MB,
                 chunk_size: int = CHUNK_SIZE) -> None:
        self.root, self.template = root, template
        self.limit = file_size_mb * 1024 * 1024
        self.chunk_size = chunk_size
        self.chunk_index, self.file_index = 0, 0
        self.writer: pq.ParquetWriter | None = None
        self.file_bytes = 0

    def place(self, nbytes: int) -> tuple[int, int]:
        """The (chunk, file) indices that the next table, of ``nbytes``, will go to (LeRobot's
        rows name their own file)."""
        if self.writer is not None and self.file_bytes + nbytes > self.limit:
            self.close()
            self.file_index += 1
            if self.file_index == self.chunk_size:
                self.chunk_index, self.file_index = self.chunk_index + 1, 0
        return self.chunk_index, self.file_index

    def write(self, table: pa.Table) -> None:
        """Append ``table`` to the file :meth:`place` chose for it."""
        if self.writer is None:
            path = self.root / self.template.format(chunk_index=self.chunk_index,
                                                    file_index=self.file_index)
            path.parent.mkdir(parents=True, exist_ok=True)
            # LeRobot's own writer settings
            self.writer = pq.ParquetWriter(path, table.schema, compression="snappy",
                                           use_dictionary=True)
            self.file_bytes = 0
        self.writer.write_table(table)
        self.file_bytes += table.nbytes

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _tasks_table() -> pa.Table:
    """meta/tasks.parquet as pandas writes LeRobot's task frame: a ``task_index`` column and
    the task strings as the (unnamed) index, which ``pandas.read_parquet`` restores."""
    index = "__index_level_0__"
    pandas_meta = {
        "index_columns": [index],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": None, "field_name": index, "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.3.3",  # the pandas of lerobot 0.4.4's tested set
    }
    schema = pa.schema([("task_index", pa.int64()), (index, pa.string())],
                       metadata={"pandas": json.dumps(pandas_meta)})
    return pa.table({"task_index": [0], index: [TASK]}, schema=schema)


class LeRobotWriter:
    """Builds a LeRobot v3.0 dataset in ``root`` from episodes added one at a time;
    :meth:`close` writes the metadata that needs all of them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = ChunkedParquetWriter(root, DATA_PATH)
        self.episodes = ChunkedParquetWriter(root, EPISODES_PATH)
        self.features: dict[str, dict] = {}
        self.schema: pa.Schema | None = None
        self.first_episode = ""
        # the stats of the episodes so far, aggregated as each is added (memory stays flat)
        self.stats: dict[str, dict[str, np.ndarray]] = {}
        self.episode_count = 0
        self.frames = 0

    def add(self, record: EpisodeRecord) -> None:
        shape = record.steps[0].observation.image.shape
        if not self.features:
            self.features = lerobot_features(shape)
            self.schema = data_schema(self.features)
            self.first_episode = record.episode_id
        elif list(shape) != self.features[IMAGE]["shape"]:
            height, width = self.features[IMAGE]["shape"][:2]
            raise ExportError(f"episode {record.episode_id!r} has {shape[1]}x{shape[0]} px "
                              f"frames: expected {width}x{height} px like episode "
                              f"{self.first_episode!r}; a dataset holds one camera's frames")
        episode_index, n = self.episode_count, len(record.steps)
        columns = episode_columns(record, episode_index, self.frames)
        stats = episode_stats(columns)
        columns[IMAGE] = [{"bytes": encode_image(image, "png"), "path": None}
                          for image in columns[IMAGE]]
        data = pa.table([_arrow_column(columns[f.name], f.type) for f in self.schema],
                        schema=self.schema)
        chunk, file = self.data.place(data.nbytes)
        self.data.write(data)
        row = pa.table({
            "episode_index": [episode_index], "tasks": [[TASK]], "length": [n],
            "data/chunk_index": [chunk], "data/file_index": [file],
            "dataset_from_index": [self.frames], "dataset_to_index": [self.frames + n],
            **{f"stats/{name}/{key}": [value.tolist()]
               for name, feature_stats in stats.items() for key, value in feature_stats.items()},
            # the grasp label (App. D.3), and where the episode came from
            "success": [record.success], "episode_id": [record.episode_id],
            "cell_id": [record.cell_id], "policy_name": [record.policy_name],
        })
        chunk, file = self.episodes.place(row.nbytes)
        row = row.append_column("meta/episodes/chunk_index", pa.array([chunk], pa.int64()))
        self.episodes.write(row.append_column("meta/episodes/file_index",
                                              pa.array([file], pa.int64())))
        self.stats = aggregate_stats([self.stats, stats]) if self.stats else stats
        self.episode_count += 1
        self.frames += n

    def close(self) -> None:
        """Finish the parquet files and write info.json, stats.json and tasks.parquet."""
        self.data.close()
        self.episodes.close()
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": ROBOT_TYPE,
            "total_episodes": self.episode_count, "total_frames": self.frames, "total_tasks": 1,
            "chunks_size": CHUNK_SIZE, "data_files_size_in_mb": FILE_SIZE_MB,
            "video_files_size_in_mb": VIDEO_FILE_SIZE_MB, "fps": FPS,
            "splits": {"train": f"0:{self.episode_count}"},
            "data_path": DATA_PATH, "video_path": None, "features": self.features,
        }
        stats = {name: _json_ready(s) for name, s in self.stats.items()}
        for path, content in ((INFO_PATH, info), (STATS_PATH, stats)):
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            (self.root / path).write_text(json.dumps(content, indent=4) + "\n")
        pq.write_table(_tasks_table(), self.root / TASKS_PATH)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote, and what it read and skipped."""

    episodes: int
    frames: int
    files: int  # episode files read
    skipped: int  # damaged files and malformed episodes, each logged


def _recording_order(path: Path) -> list[str | int]:
    """Sort key: numbers in the path compare as numbers, so a bag's ``..._10.mcap`` comes
    after its ``..._9.mcap``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def check_out(out: str | Path, overwrite: bool) -> None:
    """Raise ExportError unless ``out`` is a new or empty folder, or holds a dataset and
    ``overwrite`` is given: a folder holding anything else is never replaced."""
    out = Path(out)
    expected = "expected a new or empty folder"
    if out.exists() and not out.is_dir():
        raise ExportError(f"not a folder; {expected}")
    if (out / INFO_PATH).is_file():
        if not overwrite:
            raise ExportError(f"holds a dataset already ({INFO_PATH}); {expected}, or "
                              "--overwrite to replace it")
    elif out.is_dir() and any(out.iterdir()):
        raise ExportError(f"holds files but no dataset; {expected} (--overwrite replaces only "
                          "a dataset)")


def export_lerobot(paths: Iterable[str | Path], out: str | Path, overwrite: bool = False,
                   progress: bool = True) -> ExportResult:
    """Write the episodes of the bags (or folders of bags) ``paths`` as a LeRobot v3.0
    dataset at ``out`` (see :func:`check_out`). ExportError when no episode can be read or
    two cameras' frames are mixed; nothing is left behind then."""
    check_out(out, overwrite)
    out = Path(out)
    files = sorted(episode_files(paths), key=_recording_order)
    tmp = out.parent / f".{out.name}.partial"
    if tmp.exists():  # an earlier export that was interrupted
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    writer = LeRobotWriter(tmp)
    skipped = 0

    def skip(message: str) -> None:
        nonlocal skipped
        skipped += 1
        log.error("%s; skipped", message)

    try:
        for path in tqdm(files, desc="export", unit="file", disable=not progress):
            try:
                for record in read_episode_file(path, on_error=skip):
                    writer.add(record)
            except EpisodeFileError as err:
                skip(str(err))
        if not writer.episode_count:
            raise ExportError(f"none of the {len(files)} episode files holds a readable "
                              "episode (each is logged above)")
        writer.close()
    except BaseException:
        writer.data.close()
        writer.episodes.close()
        shutil.rmtree(tmp)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return ExportResult(writer.episode_count, writer.frames, len(files), skipped)
