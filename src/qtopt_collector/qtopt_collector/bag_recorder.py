"""Crash-safe rosbag2 (MCAP) recording of finished episodes, and reading them back.

A bag is a standard rosbag2 split bag: a folder with ``metadata.yaml`` (version 9) and MCAP
files (zstd chunk compression). Each finished episode becomes one complete MCAP file: written by
``rosbags`` into a hidden temporary folder, fsynced, renamed into the bag, and only then listed
in an atomically replaced ``metadata.yaml``. A crash or ``kill -9`` therefore loses at most the
episode in flight: files already listed are complete, a file renamed but not yet listed is
listed again by :func:`repair_bag`, and temporary folders are removed. When a bag's files pass
``max_bag_bytes`` (or it holds ``max_episodes_per_bag``) the recorder starts the next bag.

With ``step_topics`` each file also holds the episode's steps on standard topics
(:func:`~qtopt_collector.bag_format.step_messages`: camera frames, gripper state), stamped just
before the Episode message and after the previous episode's, so ``ros2 bag play`` and Foxglove
show the episodes one after another; being in the same file, they come and go with it.

Each bag records its provenance in rosbag2's ``custom_data`` string map (metadata version >= 6):
``qtopt.camera``, the cell camera's :class:`~qtopt_policy.spec.CameraSpec` as compact JSON, and
``qtopt.label_source``, how its episodes were labeled; :func:`bag_provenance` reads them back.

``ros2 bag info``, ``rosbags`` and the ``mcap`` tools read these bags; :func:`read_episodes`
streams them back file by file (each file's framing and CRCs checked, each episode validated)
and reports, then skips, a damaged file or a malformed episode; a damaged metadata.yaml costs
nothing either, as the bag's MCAP files are then read without it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin

from qtopt_collector import mcap_integrity
from qtopt_collector.bag_files import METADATA, find_bags
from qtopt_collector.bag_format import (
    EPISODE_TOPIC,
    EPISODE_TYPE,
    STEP_IMAGE_FORMATS,
    STEP_SPACING_NS,
    BagMessage,
    deserialize_episode,
    serialize_episode,
    step_messages,
    typestore,
)
from qtopt_policy.config_fields import bounded, check_bounds
from qtopt_policy.episode_record import EpisodeLimits, EpisodeRecord, InvalidEpisodeError
from qtopt_policy.spec import CameraSpec, one_line

log = logging.getLogger(__name__)
TMP_PREFIX = ".tmp_"
PROVENANCE_PREFIX = "qtopt."  # custom_data keys of this project, beside any other tool's


@dataclass(frozen=True)
class RecorderConfig:
    """Recorder settings; the recorder node's parameters mirror these fields."""

    out_dir: str = "data"  # folder of the bags
    cell_id: str = "cell0"  # names this cell's bags, <cell_id>__<time>_<n>
    max_bag_bytes: int = bounded(256 * 1024 * 1024, ge=1)  # rotate to a new bag past this size
    # ... and past this many episodes: metadata.yaml is rewritten per episode, so its size is
    # bounded, and many small bags suit shuffled multi-reader log replay (App. F.2).
    max_episodes_per_bag: int = bounded(100, ge=1)
    compress: bool = True  # zstd chunk compression inside each MCAP file
    # Provenance (strings, as ROS parameters and custom_data hold no structures); "" = unknown.
    camera: str = ""  # the cell's CameraSpec.to_json()
    label_source: str = ""  # "detector" (image subtraction, App. D.3) or "truth" (simulator)
    # Also each step's camera frame and gripper state on standard topics in the cell's namespace
    # (camera/image_raw or camera/image_raw/compressed, gripper/closed, gripper/height_to_bottom)
    # for Foxglove and ros2 bag play; the Episode message alone holds the training data.
    step_topics: bool = True
    # Their frames: "raw" (rgb8 Image; zstd stores frames that fit one 1 MiB chunk with the
    # Episode's copies almost free), "jpeg" (CompressedImage, quality 95, 4:4:4; for large
    # frames, as a real cell's) or "png" (CompressedImage, lossless)
    step_image_format: str = "raw"

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.step_image_format not in STEP_IMAGE_FORMATS:
            raise ValueError(f"step_image_format {self.step_image_format!r}: expected one of "
                             f"{STEP_IMAGE_FORMATS}")
        if self.camera:
            try:
                CameraSpec.from_json(self.camera)
            except (ValueError, TypeError) as err:
                raise ValueError(f"camera {self.camera!r}: expected CameraSpec JSON ({err})"
                                 ) from err

    def custom_data(self) -> dict[str, str]:
        """The bag's ``custom_data`` entries for the provenance that is known."""
        fields = {"camera": self.camera, "label_source": self.label_source}
        return {PROVENANCE_PREFIX + k: v for k, v in fields.items() if v}


def fsync_dir(path: Path) -> None:
    """Make renames and new files in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BagMetadataError(ValueError):
    """A bag's metadata.yaml that cannot be used; one line naming the key, its value and what
    was expected. Its MCAP files are still read, one by one."""


METADATA_KEY = "rosbag2_bagfile_information"


def _is(kind: type, test: Callable[[Any], bool] = lambda _: True) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, kind) and not isinstance(value, bool) and test(value)


# key: (check, what is expected); the keys this module reads, all written since version 4
_METADATA_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "version": (_is(int, lambda v: 1 <= v <= 9), "a rosbag2 metadata version from 1 to 9"),
    "storage_identifier": (_is(str, lambda v: v == "mcap"), "'mcap'"),
    "relative_file_paths": (_is(list, lambda v: all(
        isinstance(name, str) and name and "/" not in name for name in v)),
        "a list of file names in the bag"),
    "message_count": (_is(int, lambda v: v >= 0), "a count >= 0"),
    "files": (_is(list), "a list of per-file entries"),
    "topics_with_message_count": (_is(list), "a list of topic entries"),
}


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _check_metadata(info: object) -> dict:
    """``info`` (the parsed file) as the bag's information, or ValueError for the first key
    that is missing or not what rosbag2 writes."""
    if not isinstance(info, dict) or not isinstance(info.get(METADATA_KEY), dict):
        raise ValueError(f"top level {_short(info)}: expected a mapping with key {METADATA_KEY}")
    info = info[METADATA_KEY]
    for key, (ok, expected) in _METADATA_FIELDS.items():
        if key not in info:
            raise ValueError(f"{key} missing: expected {expected}")
        if not ok(info[key]):
            raise ValueError(f"{key} {_short(info[key])}: expected {expected}")
    custom = info.get("custom_data")
    if custom is not None and not (isinstance(custom, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in custom.items())):
        raise ValueError(f"custom_data {_short(custom)}: expected a map of strings to strings")
    return info


def read_bag_metadata(bag: Path) -> dict | None:
    """The checked ``rosbag2_bagfile_information`` of ``bag``; None when it has no
    metadata.yaml. Raises BagMetadataError naming what is wrong."""
    path = bag / METADATA
    if not path.exists():
        return None
    try:
        return _check_metadata(yaml.safe_load(path.read_bytes().decode()))
    except UnicodeDecodeError as err:
        reason = f"byte {err.start} is not UTF-8: expected YAML text"
    except yaml.YAMLError as err:
        reason = f"is not YAML ({one_line(err)})"
    except ValueError as err:
        reason = str(err)
    if path.stat().st_size == 0:
        reason = "is empty (0 bytes): expected rosbag2 metadata"
    raise BagMetadataError(f"bag {bag} {METADATA}: {reason}")


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _write_metadata(bag: Path, info: dict) -> None:
    tmp = bag / f"{TMP_PREFIX}{METADATA}"
    with open(tmp, "w") as f:
        yaml.dump({METADATA_KEY: info}, f, Dumper=_DUMPER, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, bag / METADATA)


def _merge(info: dict | None, part: dict, file_name: str) -> dict:
    """Add the single-file metadata ``part`` (renamed to ``file_name``) to a bag's ``info``."""
    entry = dict(part["files"][0], path=file_name)
    if info is None:
        info = dict(part, files=[], relative_file_paths=[], message_count=0,
                    topics_with_message_count=[])
    info["files"] = info["files"] + [entry]
    info["relative_file_paths"] = info["relative_file_paths"] + [file_name]
    info["message_count"] += part["message_count"]
    start = min(f["starting_time"]["nanoseconds_since_epoch"] for f in info["files"])
    end = max(f["starting_time"]["nanoseconds_since_epoch"] + f["duration"]["nanoseconds"]
              for f in info["files"])
    info["starting_time"] = {"nanoseconds_since_epoch": start}
    info["duration"] = {"nanoseconds": end - start}
    counts = {t["topic_metadata"]["name"]: t for t in info["topics_with_message_count"]}
    for topic in part["topics_with_message_count"]:
        name = topic["topic_metadata"]["name"]
        if name in counts:
            counts[name] = dict(counts[name],
                                message_count=counts[name]["message_count"]
                                + topic["message_count"])
        else:
            counts[name] = topic
    info["topics_with_message_count"] = list(counts.values())
    return info


def _write_part(bag: Path, index: int, messages: list[BagMessage], compress: bool,
                info: dict | None, custom_data: dict[str, str]) -> dict:
    """Write ``messages`` as one complete MCAP file, list it in the bag's metadata ``info``
    (None for a new bag, which takes ``custom_data``) and return the new metadata."""
    tmp = bag / f"{TMP_PREFIX}{index}"
    if tmp.exists():
        shutil.rmtree(tmp)
    writer = Writer(tmp, version=9, storage_plugin=StoragePlugin.MCAP)
    if compress:
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    for key, value in custom_data.items():  # also in the file's own metadata, for repair_bag
        writer.set_custom_data(key, value)
    writer.open()
    connections = {}
    for message in messages:
        key = message.topic, message.msgtype
        if key not in connections:
            connections[key] = writer.add_connection(*key, typestore=typestore())
        writer.write(connections[key], message.stamp_ns, message.data)
    writer.close()
    part = read_bag_metadata(tmp)
    written = tmp / part["relative_file_paths"][0]
    mcap_integrity.seal(written)  # rosbags writes no checksums: readers can tell damage
    with open(written, "rb") as f:
        os.fsync(f.fileno())
    name = f"{bag.name}_{index}.mcap"
    os.replace(written, bag / name)
    info = _merge(info, part, name)
    _write_metadata(bag, info)
    fsync_dir(bag)  # both renames durable; their order within one directory is kept
    shutil.rmtree(tmp)
    return info


def repair_bag(bag: Path) -> int:
    """Remove temporary leftovers of a crash and list complete but unlisted files.

    Returns how many files were listed again. An unlisted file is re-read with the ``mcap``
    reader and rewritten through the normal path; an unreadable one is reported and moved
    aside as ``*.corrupt``.
    """
    from mcap.reader import make_reader

    for leftover in bag.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    try:
        info = read_bag_metadata(bag)
    except BagMetadataError as err:  # rebuilt from the files below: every file is unlisted
        log.error("%s; moved aside as %s.corrupt and rebuilt from the MCAP files", err, METADATA)
        (bag / METADATA).rename(bag / f"{METADATA}.corrupt")
        info = None
    listed = set(info["relative_file_paths"]) if info else set()
    relisted = 0
    for path in sorted(bag.glob("*.mcap")):
        if path.name in listed:
            continue
        try:
            mcap_integrity.check(path.read_bytes())
            with open(path, "rb") as f:
                reader = make_reader(f)
                messages = [BagMessage(c.topic, s.name, m.log_time, bytes(m.data))
                            for s, c, m in reader.iter_messages()]
                # rosbag2 keeps a copy of the file's metadata inside it: the provenance of a
                # bag whose metadata.yaml was never written survives in its first file.
                custom_data = next((yaml.safe_load(m.metadata["serialized_metadata"])
                                    .get("custom_data") for m in reader.iter_metadata()
                                    if m.name == "rosbag2"), None) or {}
        except Exception as err:  # mcap raises several error types for truncated files
            log.error("bag %s: unreadable file %s moved aside: %s", bag, path.name, err)
            path.rename(path.with_suffix(".mcap.corrupt"))
            continue
        index = int(path.stem.rsplit("_", 1)[1])
        path.unlink()
        info = _write_part(bag, index, messages, True, info, custom_data)
        relisted += 1
    return relisted


class BagRecorder:
    """Appends finished episodes to a rotating series of bags under ``out_dir``."""

    def __init__(self, config: RecorderConfig) -> None:
        self.config = config
        self.out_dir = Path(config.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for bag in self.out_dir.iterdir():
            if bag.is_dir() and bag.name.startswith(f"{config.cell_id}__"):
                repair_bag(bag)
        self.bag: Path | None = None
        self.info: dict | None = None  # metadata of the current bag, kept in memory
        self.index = 0
        self.bag_bytes = 0
        self.episodes = 0
        self.last_stamp_ns = 0  # of the last message written: the next ones come after it

    def _new_bag(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        base = f"{self.config.cell_id}__{stamp}"
        n = 0
        while (self.out_dir / f"{base}_{n}").exists():
            n += 1
        self.bag = self.out_dir / f"{base}_{n}"
        self.bag.mkdir()
        self.info, self.index, self.bag_bytes = None, 0, 0

    def write_serialized(self, data: bytes, stamp_ns: int | None = None,
                         record: EpisodeRecord | None = None) -> Path:
        """Record one ``Episode`` message given as CDR bytes (``record``: the same episode
        deserialized, where the caller has it); return the bag it went to. With
        ``step_topics``, bytes that are no valid episode raise InvalidEpisodeError."""
        if (self.bag is None or self.bag_bytes >= self.config.max_bag_bytes
                or self.index >= self.config.max_episodes_per_bag):
            self._new_bag()
        assert self.bag is not None
        self.info = _write_part(self.bag, self.index,
                                self._messages(data, stamp_ns or time.time_ns(), record),
                                self.config.compress, self.info, self.config.custom_data())
        self.bag_bytes += (self.bag / f"{self.bag.name}_{self.index}.mcap").stat().st_size
        self.index += 1
        self.episodes += 1
        return self.bag

    def write(self, record: EpisodeRecord) -> Path:
        return self.write_serialized(serialize_episode(record), record=record)

    def _messages(self, data: bytes, stamp_ns: int, record: EpisodeRecord | None
                  ) -> list[BagMessage]:
        """The episode's messages: its steps (with ``step_topics``), then the Episode at
        ``stamp_ns``, all moved later where needed to follow the last episode's."""
        record = (record or deserialize_episode(data)) if self.config.step_topics else None
        count = len(record.steps) if record else 0
        first = max(stamp_ns - count * STEP_SPACING_NS, self.last_stamp_ns + 1)
        self.last_stamp_ns = first + count * STEP_SPACING_NS
        steps = step_messages(record, first, self.config.step_image_format) if record else []
        return [*steps, BagMessage(EPISODE_TOPIC, EPISODE_TYPE, self.last_stamp_ns, data)]


def bag_provenance(bag: Path | str) -> dict[str, str]:
    """The provenance a bag records, e.g. ``{"camera": "{...}", "label_source": "truth"}``;
    empty for bags written before it was recorded."""
    custom = (read_bag_metadata(Path(bag)) or {}).get("custom_data") or {}
    return {k.removeprefix(PROVENANCE_PREFIX): v for k, v in custom.items()
            if k.startswith(PROVENANCE_PREFIX)}


class EpisodeFileError(ValueError):
    """An MCAP file that yields no episodes: one line naming the file and what is wrong."""


def _episode_messages(data: bytes) -> list[bytes]:
    """The ``Episode`` payloads of a checked MCAP file; ValueError for a foreign file."""
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    schemas: dict[int, str] = {}
    channels: dict[int, Channel] = {}
    payloads: list[bytes] = []
    for record in StreamReader(BytesIO(data)).records:
        if isinstance(record, Schema):
            schemas[record.id] = record.name
        elif isinstance(record, Channel):
            channels[record.id] = record
        elif isinstance(record, Message) and channels[record.channel_id].topic == EPISODE_TOPIC:
            payloads.append(record.data)
    episode_channels = [c for c in channels.values() if c.topic == EPISODE_TOPIC]
    if not episode_channels:
        topics = sorted({c.topic for c in channels.values()})
        raise ValueError(f"has topics {topics}: expected {EPISODE_TOPIC} ({EPISODE_TYPE})")
    for channel in episode_channels:
        schema = schemas.get(channel.schema_id, "")
        if schema != EPISODE_TYPE or channel.message_encoding != "cdr":
            raise ValueError(f"topic {EPISODE_TOPIC} holds {schema or 'unknown'!r} in "
                             f"{channel.message_encoding!r}: expected {EPISODE_TYPE!r} in 'cdr'")
    return payloads


def read_episode_file(path: Path, limits: EpisodeLimits = EpisodeLimits(),
                      on_error: Callable[[str], None] | None = None) -> list[EpisodeRecord]:
    """The episodes of one MCAP file after checking its framing and checksums. A damaged or
    foreign file raises EpisodeFileError; a malformed episode raises it too, or, given
    ``on_error``, is reported there (one line) and skipped while the others are read."""
    try:
        data = Path(path).read_bytes()
        mcap_integrity.check(data)
        payloads = _episode_messages(data)
    except Exception as err:  # OSError, ValueError, and the mcap parser's own errors
        reason = str(err) if isinstance(err, ValueError) else (
            f"is unreadable ({type(err).__name__}: {one_line(err)})")
        raise EpisodeFileError(f"episode file {path} {reason}") from None
    episodes = []
    for index, payload in enumerate(payloads):
        try:
            episodes.append(deserialize_episode(payload, limits))
        except InvalidEpisodeError as err:
            message = f"episode file {path} message {index}: {err}"
            if on_error is None:
                raise EpisodeFileError(message) from None
            on_error(message)
    return episodes


def listed_files(bag: Path) -> list[Path]:
    """The MCAP files ``bag``'s metadata lists; BagMetadataError when the metadata is damaged
    or lists a file that is not there."""
    info = read_bag_metadata(bag)
    listed = [bag / name for name in info["relative_file_paths"]] if info else []
    missing = [p.name for p in listed if not p.is_file()]
    if missing:
        raise BagMetadataError(f"bag {bag} {METADATA}: relative_file_paths lists "
                               f"{_short(missing)}: expected files in the bag")
    return listed


def bag_files(bag: Path) -> list[Path]:
    """:func:`listed_files`, or, where that fails, every MCAP file in the bag (logged), so a
    damaged metadata.yaml loses nothing."""
    try:
        return listed_files(bag)
    except BagMetadataError as err:
        log.error("%s; reading its MCAP files instead", err)
        return sorted(bag.glob("*.mcap"))


def read_episodes(root: Path | str, limits: EpisodeLimits = EpisodeLimits()
                  ) -> Iterator[EpisodeRecord]:
    """All episodes in the bags below ``root``. A damaged file or a malformed episode is
    logged (one line) and skipped, and the rest are read."""
    for bag in find_bags(root):
        for path in bag_files(bag):
            try:
                yield from read_episode_file(path, limits, on_error=log.error)
            except EpisodeFileError as err:
                log.error("%s; skipped", err)
