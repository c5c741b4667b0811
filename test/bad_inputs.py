"""The bad-input table of issue 17: malformed inputs, each with the one-line error it must get
and, where data or a long-running consumer is involved, the proof that nothing was lost.

Shared by ``test/test_bad_inputs.py`` (one test per case) and ``bench/bad_input_table.py``
(the counts per group for the closing note). A case says how its bad input is made from a good
one and what its error line must contain; those substrings name the field or value and what was
expected, so a passing case shows the message names them. The command line's own table lives
in ``src/qtopt_learner/test/test_cli_errors.py``.

Consumers, per group: MCAP files go to ``read_episode_file`` (error) and to ``read_episodes``
and a log-replay reader with good files beside them (nothing lost); metadata.yaml to
``listed_files`` (error), ``read_episodes`` and ``repair_bag`` (nothing lost); Episode messages
to ``deserialize_episode`` (error) and the nodes' ``EpisodeIntake`` between two good ones;
Observation requests to a real ``policy_node``'s SelectAction callback, followed by a good
request; parameters to the configs and to ``declare_config`` on real rclpy nodes; model files
to a ``PolicyServer`` that serves a good model (it must keep serving it) or the commands'
checks.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import os
import shutil
import struct
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from qtopt_collector import mcap_integrity
from qtopt_collector.bag_format import (
    EPISODE_TOPIC,
    EPISODE_TYPE,
    EpisodeIntake,
    deserialize_episode,
    serialize_episode,
    typestore,
)
from qtopt_collector.bag_recorder import (
    BagMetadataError,
    BagRecorder,
    EpisodeFileError,
    RecorderConfig,
    listed_files,
    read_bag_metadata,
    read_episode_file,
    read_episodes,
    repair_bag,
)
from qtopt_policy.episode_record import (
    EpisodeLimits,
    EpisodeRecord,
    InvalidEpisodeError,
    StepRecord,
    Termination,
)
from qtopt_policy.model_file import ModelLoadError
from qtopt_policy.spec import Action, ActionBounds, CameraSpec, Observation

# -- the table's shape --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    make: Callable[..., Any]  # the bad input from the good one(s); its arguments are per group
    expected: str  # what the one error line must contain
    error: type[BaseException] = ValueError
    option: Any = None  # per group: the episode limits, or which consumer a model case uses


@dataclass
class Outcome:
    case: Case
    error: BaseException | None
    logged: list[str] = field(default_factory=list)  # error lines long-running readers logged
    readers: int = 0  # how many readers were to log one line each
    lost: bool | None = None  # None: nothing to lose (a config, a command's check)

    @property
    def message(self) -> str:
        return "" if self.error is None else str(self.error)

    def unclear(self) -> list[str]:
        """How the error falls short of one clear line; empty when it is one."""
        found = []
        if self.error is None:
            found.append("no error")
        elif not isinstance(self.error, self.case.error):
            found.append(f"{type(self.error).__name__}, expected {self.case.error.__name__}")
        if len(self.logged) != self.readers:
            found.append(f"{len(self.logged)} lines logged, expected {self.readers}")
        for line in [self.message] + self.logged:
            if "\n" in line or self.case.expected not in line:
                found.append(f"error line {line!r} is not one line with {self.case.expected!r}")
        return found

    def problems(self) -> list[str]:
        """How the case falls short of the standard; empty when it meets it."""
        return self.unclear() + (["data lost or the consumer stopped"] if self.lost else [])

    @property
    def clear(self) -> bool:
        return not self.unclear()


class _Lines(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def logged_errors() -> Iterator[list[str]]:
    """The error lines the project's readers log inside the block."""
    lines: list[str] = []
    handler = _Lines(lines)
    loggers = [logging.getLogger(name) for name in ("qtopt_collector", "qtopt_learner")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield lines
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _raised(action: Callable[[], Any]) -> BaseException | None:
    try:
        action()
    except Exception as err:  # the outcome records whatever it was
        return err
    return None


# -- the good inputs ----------------------------------------------------------------------------

FRAME = 8  # px: tiny frames keep every case cheap
MODEL_FRAME = 72  # px: the frames of the camera the served model was trained with
MODEL_CAMERA = CameraSpec(width=MODEL_FRAME, height=MODEL_FRAME, fov_deg=48, distance=0.75)


def good_episode(index: int) -> EpisodeRecord:
    """A two-step episode (move, then the learned stop) that succeeded."""
    obs = Observation(np.full((FRAME, FRAME, 3), 40 * index, np.uint8), False, 0.2)
    steps = [StepRecord(obs, Action((0.01, -0.01, -0.02), 0.1, False, False), -0.05, False,
                        math.nan),
             StepRecord(obs, Action.stop(), 1.0, True, 0.5)]
    return EpisodeRecord(f"e{index}", "cell0", "noisy", 1, Termination.LEARNED, steps, obs, True,
                         None, [], index)


class Bench:
    """The good inputs the cases start from, each made once under ``root``; ``close`` ends the
    ROS context and the nodes it made, if any."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stack = ExitStack()
        self._folders = 0

    def close(self) -> None:
        self._stack.close()

    def folder(self) -> Path:
        self._folders += 1
        path = self.root / "cases" / str(self._folders)
        path.mkdir(parents=True)
        return path

    # recorded episodes: one bag of three one-episode MCAP files
    @functools.cached_property
    def bag(self) -> Path:
        recorder = BagRecorder(RecorderConfig(out_dir=str(self.root / "good"), cell_id="cell0"))
        for index in range(3):
            bag = recorder.write(good_episode(index))
        return bag

    def fresh_bag(self) -> Path:
        """A copy of the good bag in a folder of its own."""
        return Path(shutil.copytree(self.bag, self.folder() / self.bag.name))

    @functools.cached_property
    def mcap(self) -> bytes:
        """The middle file of the bag (episode e1): the one the MCAP cases damage."""
        return self.bag_files()[1].read_bytes()

    def bag_files(self, bag: Path | None = None) -> list[Path]:
        return sorted((bag or self.bag).glob("*.mcap"))

    @functools.cached_property
    def metadata(self) -> str:
        return (self.bag / "metadata.yaml").read_text()

    @functools.cached_property
    def cdr(self) -> bytes:
        return serialize_episode(good_episode(1))

    # models: one served by a PolicyServer, and the files the model cases start from
    @functools.cached_property
    def model(self) -> Path:
        return self.export("good.pt", "sim", version=1, camera=MODEL_CAMERA)

    def export(self, name: str, preset: str, version: int = 1,
               camera: CameraSpec | None = None) -> Path:
        import torch

        from qtopt_policy.cem import CEMConfig
        from qtopt_policy.qnetwork import PRESETS, QNetwork
        from qtopt_policy.torchscript_model import ModelMetadata, export_model

        torch.manual_seed(0)
        path = self.root / "models" / name
        # a tiny CEM: the good requests between the bad ones stay cheap
        cem = CEMConfig(num_samples=8, num_elites=2, iterations=1)
        export_model(QNetwork(PRESETS[preset]).eval(), path, ModelMetadata(
            preset, PRESETS[preset], ActionBounds(), cem, version, version, camera=camera))
        return path

    @functools.cached_property
    def server(self):
        from qtopt_policy.policy_server import PolicyServer, PolicyServerConfig

        server = PolicyServer(PolicyServerConfig(device="cpu"))
        server.load(self.model)
        return server

    # ROS: one context on a leased domain, one policy node, and plain nodes for parameters
    @functools.cached_property
    def ros_context(self):
        import rclpy
        from rclpy.context import Context

        from qtopt_policy.ros_env import lease_domain_id, ros_environment

        domain = self._stack.enter_context(lease_domain_id())
        changed = {k: v for k, v in ros_environment(domain, self.root / "ros_log").items()
                   if os.environ.get(k) != v}
        saved = {k: os.environ.get(k) for k in changed}
        os.environ.update(changed)
        self._stack.callback(_restore_environment, saved)
        context = Context()
        rclpy.init(context=context)
        self._stack.callback(rclpy.try_shutdown, context=context)
        return context

    @functools.cached_property
    def policy_node(self):
        from rclpy.parameter import Parameter

        from qtopt_policy.policy_node import PolicyNode

        node = PolicyNode(context=self.ros_context, parameter_overrides=[
            Parameter("model_path", value=str(self.model)), Parameter("device", value="cpu"),
            Parameter("reload_period_s", value=0.0)])
        self._stack.callback(node.destroy_node)
        return node


def _restore_environment(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# -- MCAP files -----------------------------------------------------------------------------------

MAGIC = mcap_integrity.MAGIC
HEADER = mcap_integrity.RECORD_HEADER


def _flip(where: Callable[[bytes, mcap_integrity.Layout], int], bit: int = 4
          ) -> Callable[[bytes], bytes]:
    """Flip one bit of the byte at ``where(data, layout)``."""
    def make(data: bytes) -> bytes:
        damaged = bytearray(data)
        damaged[where(data, mcap_integrity.layout(data))] ^= 1 << bit
        return bytes(damaged)
    return make


def _cut(at: Callable[[int], int]) -> Callable[[bytes], bytes]:
    return lambda data: data[:at(len(data))]


def _record(opcode: int, in_summary: bool = False) -> Callable[[bytes, Any], int]:
    """The middle of the first record of type ``opcode`` in the data section or the summary."""
    def where(data: bytes, parts: mcap_integrity.Layout) -> int:
        start, end = (parts.data_end, parts.footer) if in_summary else (len(MAGIC),
                                                                       parts.data_end)
        pos, body_end = next((p, e) for op, p, e in mcap_integrity.records(data, start, end)
                             if op == opcode)
        return (pos + HEADER + body_end) // 2
    return where


def _foreign(channels: list[tuple[str, str, str]], payload: bytes = b"\x00\x01\x00\x00"
             ) -> Callable[[bytes], bytes]:
    """An MCAP file written by the ``mcap`` package with (topic, schema, encoding) channels,
    one message on each."""
    def make(_: bytes) -> bytes:
        from mcap.writer import Writer

        out = io.BytesIO()
        writer = Writer(out)
        writer.start(profile="ros2", library="foreign")
        for index, (topic, schema, encoding) in enumerate(channels):
            schema_id = writer.register_schema(schema, "ros2msg", b"string data")
            channel = writer.register_channel(topic, encoding, schema_id)
            writer.add_message(channel, index, payload, index)
        writer.finish()
        return out.getvalue()
    return make


def _with_episode(payload: Callable[[], bytes]) -> Callable[[bytes], bytes]:
    """A well-formed MCAP file whose one /episodes message is ``payload()``."""
    return lambda _: _foreign([(EPISODE_TOPIC, EPISODE_TYPE, "cdr")], payload())(b"")


EPISODES = ["e0", "e1", "e2"]
MAGIC_LINE = "expected the MCAP magic"
CUT = "ends without the MCAP magic"
DATA_CRC, SUMMARY_CRC = "data section has CRC-32", "summary section has CRC-32"


def _mcap(name: str, make: Callable[..., bytes], expected: str) -> Case:
    return Case("MCAP file", name, make, expected, EpisodeFileError)


def _chunk(offset: int) -> Callable[[bytes, Any], int]:
    return lambda data, parts: parts.chunks[0][0] + offset


def _chunk_data(fraction: float) -> Callable[[bytes, Any], int]:
    """A byte ``fraction`` of the way into the first chunk's compressed records."""
    def where(data: bytes, parts: mcap_integrity.Layout) -> int:
        body, end = parts.chunks[0]
        (name_length,) = struct.unpack_from("<I", data, body + 28)
        start = body + 32 + name_length + 8
        return start + int((end - start) * fraction)
    return where


MCAP_CASES = [
    _mcap("zero-length", lambda data: b"", "is empty (0 bytes): expected an MCAP file"),
    _mcap("truncated inside the magic", _cut(lambda n: 4), "starts with b'\\x89MCA'"),
    _mcap("truncated after the magic", _cut(lambda n: 8), f"{CUT} after 8 bytes"),
    _mcap("truncated at 100 bytes", _cut(lambda n: 100), f"{CUT} after 100 bytes"),
    _mcap("truncated at 25 %", _cut(lambda n: n // 4), CUT),
    _mcap("truncated at 50 %", _cut(lambda n: n // 2), CUT),
    _mcap("truncated at 75 %", _cut(lambda n: 3 * n // 4), CUT),
    _mcap("truncated inside the footer", _cut(lambda n: n - 20), CUT),
    _mcap("last byte missing", _cut(lambda n: n - 1), CUT),
    _mcap("a ROS 1 bag", lambda data: b"#ROSBAG V2.0\n" + bytes(64),
          f"starts with b'#ROSBAG ': {MAGIC_LINE}"),
    _mcap("an SQLite file (rosbag2's other storage)", lambda data: b"SQLite format 3\x00" + data,
          f"starts with b'SQLite f': {MAGIC_LINE}"),
    _mcap("random bytes", lambda data: bytes(np.random.default_rng(0).integers(0, 256, 512,
                                                                               np.uint8)),
          MAGIC_LINE),
    _mcap("a YAML file renamed .mcap", lambda data: b"rosbag2_bagfile_information: {}\n",
          f"starts with b'rosbag2_': {MAGIC_LINE}"),
    _mcap("the magic twice, nothing else", lambda data: MAGIC * 2, f"{CUT} after 16 bytes"),
    _mcap("bit flip in the start magic", _flip(lambda d, p: 3), MAGIC_LINE),
    _mcap("bit flip in the header record's length", _flip(lambda d, p: 8 + 7),
          "record at byte 8 (opcode 0x01) is"),
    _mcap("bit flip in the header's profile", _flip(lambda d, p: 8 + HEADER + 5), DATA_CRC),
    _mcap("bit flip in the chunk's stored CRC", _flip(_chunk(24)), "has CRC-32"),
    # zstd takes the size as a limit: the data section's CRC catches the change
    _mcap("bit flip in the chunk's uncompressed size", _flip(_chunk(16), bit=1), DATA_CRC),
    _mcap("bit flip in the chunk's compression name", _flip(_chunk(33)), "chunk at byte"),
    _mcap("bit flip early in the chunk's records", _flip(_chunk_data(0.1)), "chunk at byte"),
    _mcap("bit flip mid-chunk (the episode's images)", _flip(_chunk_data(0.5)),
          "chunk at byte"),
    _mcap("bit flip late in the chunk's records", _flip(_chunk_data(0.9)), "chunk at byte"),
    _mcap("bit flip in the chunk's message start time", _flip(_chunk(3)), DATA_CRC),
    _mcap("bit flip in the message index", _flip(_record(0x07)), DATA_CRC),
    _mcap("bit flip in the rosbag2 metadata record", _flip(_record(0x0C)), DATA_CRC),
    _mcap("bit flip in the DataEnd CRC", _flip(lambda d, p: p.data_end + HEADER + 1), DATA_CRC),
    _mcap("bit flip in the summary's schema", _flip(_record(0x03, True)), SUMMARY_CRC),
    _mcap("bit flip in the summary's channel", _flip(_record(0x04, True)), SUMMARY_CRC),
    _mcap("bit flip in the chunk index", _flip(_record(0x08, True)), SUMMARY_CRC),
    _mcap("bit flip in the statistics", _flip(_record(0x0B, True)), SUMMARY_CRC),
    _mcap("bit flip in a summary offset", _flip(_record(0x0E, True)), SUMMARY_CRC),
    _mcap("bit flip in the footer's summary start", _flip(lambda d, p: p.footer + HEADER + 3),
          "footer summary_start"),
    _mcap("bit flip in the footer's summary CRC", _flip(lambda d, p: p.footer + HEADER + 17),
          SUMMARY_CRC),
    _mcap("bit flip in the footer's opcode", _flip(lambda d, p: p.footer, bit=0),
          "has no footer record"),
    _mcap("bit flip in the end magic", _flip(lambda d, p: len(d) - 2), CUT),
    _mcap("foreign: another topic", _foreign([("/chatter", "std_msgs/msg/String", "cdr")]),
          f"has topics ['/chatter']: expected {EPISODE_TOPIC} ({EPISODE_TYPE})"),
    _mcap("foreign: no channels at all", _foreign([]), "has topics []: expected"),
    _mcap("wrong schema on /episodes", _foreign([(EPISODE_TOPIC, "std_msgs/msg/String", "cdr")]),
          f"holds 'std_msgs/msg/String' in 'cdr': expected '{EPISODE_TYPE}' in 'cdr'"),
    _mcap("episodes in JSON", _foreign([(EPISODE_TOPIC, EPISODE_TYPE, "json")]),
          f"holds '{EPISODE_TYPE}' in 'json': expected"),
    _mcap("an /episodes message that is no Episode", _with_episode(lambda: b"\x00\x01" * 8),
          f"message 0: 16 bytes are no {EPISODE_TYPE} message"),
    _mcap("an /episodes message with a NaN action", _with_episode(lambda: _mutated(
        serialize_episode(good_episode(1)), _set(f"{S0}.action.world_vector",
                                                 _vec(math.nan, 0, 0)))),
        "message 0: episode 'e1': step 0 action: world_vector (nan, 0, 0): expected finite"),
]


class _Replay:
    """A stand-in replay service and stop signal for one pass of a log-replay reader."""

    def __init__(self) -> None:
        self.episodes: list[EpisodeRecord] = []

    def add_episodes(self, name: str, episodes: list[EpisodeRecord]) -> None:
        self.episodes += episodes

    def stopped(self) -> bool:
        return False


def run_mcap(bench: Bench, case: Case) -> Outcome:
    bag = bench.fresh_bag()
    bad = bench.bag_files(bag)[1]
    bad.write_bytes(case.make(bench.mcap))
    error = _raised(lambda: read_episode_file(bad))
    from qtopt_learner.distributed.log_replay import episode_files, run_log_reader

    replay = _Replay()
    with logged_errors() as logged:
        read = sorted(e.episode_id for e in read_episodes(bag.parent))
        run_log_reader(episode_files([bag]), replay, replay, loop=False)
    replayed = sorted(e.episode_id for e in replay.episodes)
    good = [e for e in EPISODES if e != "e1"]
    # read_episodes and the log-replay reader each log one line
    return Outcome(case, error, logged, 2, lost=read != good or replayed != good)


# -- metadata.yaml ------------------------------------------------------------------------------


def _edit(change: Callable[[dict], None]) -> Callable[[str], str]:
    """metadata.yaml with ``change`` applied to its bag information."""
    def make(text: str) -> str:
        data = yaml.safe_load(text)
        change(data["rosbag2_bagfile_information"])
        return yaml.safe_dump(data)
    return make


def _put(key: str, value: Any) -> Callable[[str], str]:
    return _edit(lambda info: info.__setitem__(key, value))


def _drop(key: str) -> Callable[[str], str]:
    return _edit(lambda info: info.pop(key))


def _flip_text(anchor: str, offset: int = 0, bit: int = 0) -> Callable[[str], bytes]:
    """metadata.yaml with one bit flipped at ``offset`` into the first ``anchor``."""
    def make(text: str) -> bytes:
        data = bytearray(text.encode())
        data[text.index(anchor) + offset] ^= 1 << bit
        return bytes(data)
    return make


def _meta(name: str, make: Callable[[str], str | bytes], expected: str) -> Case:
    return Case("metadata.yaml", name, make, expected, BagMetadataError)


METADATA_CASES = [
    _meta("zero-length", lambda text: "", "metadata.yaml: is empty (0 bytes)"),
    _meta("truncated to 10 bytes", lambda text: text[:10],
          "top level 'rosbag2_ba': expected a mapping with key rosbag2_bagfile_information"),
    _meta("truncated at 50 %", lambda text: text[:len(text) // 2], "missing: expected"),
    _meta("truncated at 90 %", lambda text: text[:9 * len(text) // 10], "missing: expected"),
    _meta("not YAML", lambda text: "{{{ :::", "is not YAML"),
    _meta("binary, not text", lambda text: b"\xff\xfe\x00garbage", "byte 0 is not UTF-8"),
    _meta("a YAML list", lambda text: "- 1\n- 2\n",
          "top level [1, 2]: expected a mapping with key rosbag2_bagfile_information"),
    _meta("a ROS parameter file", lambda text: "recorder:\n  ros__parameters: {}\n",
          "expected a mapping with key rosbag2_bagfile_information"),
    _meta("a Python object tag (unsafe YAML)", lambda text: "!!python/object:os.system {}\n",
          "is not YAML"),
    _meta("version 42", _put("version", 42),
          "version 42: expected a rosbag2 metadata version from 1 to 9"),
    _meta("version as a word", _put("version", "nine"), "version 'nine': expected"),
    _meta("version missing", _drop("version"), "version missing: expected"),
    _meta("storage sqlite3", _put("storage_identifier", "sqlite3"),
          "storage_identifier 'sqlite3': expected 'mcap'"),
    _meta("relative_file_paths missing", _drop("relative_file_paths"),
          "relative_file_paths missing: expected a list of file names"),
    _meta("relative_file_paths a string", _put("relative_file_paths", "a.mcap"),
          "relative_file_paths 'a.mcap': expected a list of file names"),
    _meta("a file path outside the bag", _put("relative_file_paths", ["../x.mcap"]),
          "relative_file_paths ['../x.mcap']: expected"),
    _meta("a listed file that is gone", _put("relative_file_paths", ["gone.mcap"]),
          "relative_file_paths lists ['gone.mcap']: expected files in the bag"),
    _meta("message_count -1", _put("message_count", -1), "message_count -1: expected a count"),
    _meta("message_count true", _put("message_count", True), "message_count True: expected"),
    _meta("files a mapping", _put("files", {"a": 1}), "files {'a': 1}: expected a list"),
    _meta("topics missing", _drop("topics_with_message_count"),
          "topics_with_message_count missing"),
    _meta("custom_data a list", _put("custom_data", ["camera"]),
          "custom_data ['camera']: expected a map of strings to strings"),
    _meta("custom_data not strings", _put("custom_data", {"qtopt.camera": {"width": 72}}),
          "custom_data {'qtopt.camera': {'width': 72}}: expected"),
    _meta("bit flip in a key", _flip_text("relative_file_paths"),
          "relative_file_paths missing"),
    _meta("bit flip in the storage name", _flip_text("storage_identifier: mcap", 21),
          "storage_identifier 'm"),
    _meta("bit flip in a listed file name", _flip_text("relative_file_paths:\n  - ", 28),
          "relative_file_paths lists"),
    _meta("bit flip in the version", _flip_text("version: 9", 9, bit=6), "version 'y'"),
    _meta("bit flip turning a colon into a semicolon", _flip_text("version:", 7),
          "is not YAML (while scanning a simple key"),
]


def run_metadata(bench: Bench, case: Case) -> Outcome:
    bag = bench.fresh_bag()
    made = case.make(bench.metadata)
    (bag / "metadata.yaml").write_bytes(made.encode() if isinstance(made, str) else made)
    error = _raised(lambda: listed_files(bag))
    with logged_errors() as logged:
        read = sorted(e.episode_id for e in read_episodes(bag.parent))
    with logged_errors():  # what the repair and the second read log is not the reader's line
        repair_bag(bag)
        repaired = sorted(e.episode_id for e in read_episodes(bag.parent))
    still_bad = case.name != "a listed file that is gone" and _raised(
        lambda: read_bag_metadata(bag)) is not None
    return Outcome(case, error, logged, 1, lost=read != EPISODES or repaired != EPISODES
                   or still_bad)


# -- Episode messages ---------------------------------------------------------------------------


def _vec(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


def _set(path: str, value: Any) -> Callable[[Any], None]:
    """Set the dotted ``path`` (list indices as numbers) of a message to ``value``."""
    *parents, last = path.split(".")

    def change(msg: Any) -> None:
        for part in parents:
            msg = msg[int(part)] if part.isdigit() else getattr(msg, part)
        setattr(msg, last, value)
    return change


def _images(msg: Any) -> list[Any]:
    return [t.observation.image for t in msg.steps] + [msg.final_observation.image]


def _resize(size: int, which: Callable[[Any], list[Any]] = _images) -> Callable[[Any], None]:
    """Every image (or those ``which`` picks) ``size`` x ``size`` rgb8."""
    def change(msg: Any) -> None:
        for image in which(msg):
            image.width = image.height = size
            image.step = 3 * size
            image.data = np.zeros(3 * size * size, np.uint8)
    return change


def _mutated(cdr: bytes, change: Callable[[Any], None]) -> bytes:
    """The CDR of the Episode ``cdr`` with ``change`` applied."""
    msg = typestore().deserialize_cdr(cdr, EPISODE_TYPE)
    change(msg)
    return bytes(typestore().serialize_cdr(msg, EPISODE_TYPE))


def _episode(name: str, change: Callable[[Any], None] | None, expected: str,
             raw: Callable[[bytes], bytes] | None = None, limits: EpisodeLimits | None = None
             ) -> Case:
    """A malformed Episode: ``change`` applied to the good message, or ``raw`` to its CDR."""
    def make(bench: Bench) -> bytes:
        return raw(bench.cdr) if raw else _mutated(bench.cdr, change)
    return Case("Episode message", name, make, expected, InvalidEpisodeError, limits)


S0, S1 = "steps.0", "steps.1"
IMAGE = f"{S0}.observation.image"
ACT = "step 0 action: "
NO_EPISODE = f"bytes are no {EPISODE_TYPE} message"
LIMITS = "expected |t| <= (0.05, 0.05, 0.08) m"

EPISODE_CASES = [
    _episode("world_vector x NaN", _set(f"{S0}.action.world_vector", _vec(math.nan, 0, 0)),
             f"{ACT}world_vector (nan, 0, 0): expected finite values"),
    _episode("world_vector y inf", _set(f"{S0}.action.world_vector", _vec(0, math.inf, 0)),
             f"{ACT}world_vector (0, inf, 0): expected finite values"),
    _episode("world_vector z -inf", _set(f"{S0}.action.world_vector", _vec(0, 0, -math.inf)),
             f"{ACT}world_vector (0, 0, -inf): expected finite values"),
    _episode("world_vector x beyond the bound", _set(f"{S0}.action.world_vector",
                                                     _vec(0.5, 0, 0)),
             f"{ACT}translation (0.5, 0, 0): {LIMITS}"),
    _episode("world_vector y beyond the bound", _set(f"{S0}.action.world_vector",
                                                     _vec(0, -0.2, 0)),
             f"{ACT}translation (0, -0.2, 0): {LIMITS}"),
    _episode("world_vector z beyond the bound", _set(f"{S0}.action.world_vector",
                                                     _vec(0, 0, 0.25)),
             f"{ACT}translation (0, 0, 0.25): {LIMITS}"),
    _episode("vertical_rotation NaN", _set(f"{S0}.action.vertical_rotation",
                                           _vec(math.nan, 1)),
             f"{ACT}vertical_rotation (nan, 1): expected finite values"),
    _episode("vertical_rotation (0, 0)", _set(f"{S0}.action.vertical_rotation", _vec(0, 0)),
             f"{ACT}vertical_rotation (0, 0): expected (sin, cos) of an angle, norm 1"),
    _episode("vertical_rotation not a unit vector", _set(f"{S0}.action.vertical_rotation",
                                                         _vec(0.6, 0.6)),
             f"{ACT}vertical_rotation (0.6, 0.6): expected (sin, cos) of an angle"),
    _episode("rotation of 90 degrees", _set(f"{S0}.action.vertical_rotation", _vec(1, 0)),
             f"{ACT}rotation 1.5707963267948966: expected |r| <= 0.3927 rad"),
    _episode("both gripper commands", _set(f"{S0}.action.gripper_close", True),
             f"{ACT}gripper_close True and gripper_open True: expected exactly one"),
    _episode("no gripper command", _set(f"{S0}.action.gripper_open", False),
             f"{ACT}gripper_close False and gripper_open False: expected exactly one"),
    _episode("height NaN", _set(f"{S0}.observation.height_to_bottom", math.nan),
             "step 0 observation: height_to_bottom nan: expected a finite value"),
    _episode("height inf", _set(f"{S0}.observation.height_to_bottom", math.inf),
             "step 0 observation: height_to_bottom inf: expected a finite value"),
    _episode("final height -inf", _set("final_observation.height_to_bottom", -math.inf),
             "final_observation: height_to_bottom -inf: expected a finite value"),
    _episode("encoding bgr8", _set(f"{IMAGE}.encoding", "bgr8"),
             "step 0 observation: image encoding 'bgr8': expected 'rgb8'"),
    _episode("encoding mono8", _set(f"{IMAGE}.encoding", "mono8"),
             "image encoding 'mono8': expected 'rgb8'"),
    _episode("encoding 16UC1 (a depth image)", _set(f"{IMAGE}.encoding", "16UC1"),
             "image encoding '16UC1': expected 'rgb8'"),
    _episode("encoding empty", _set(f"{IMAGE}.encoding", ""),
             "image encoding '': expected 'rgb8'"),
    _episode("row step of 4 bytes per pixel", _set(f"{IMAGE}.step", 4 * FRAME),
             f"has step {4 * FRAME} and {3 * FRAME * FRAME} bytes: expected step {3 * FRAME}"),
    _episode("3 bytes short", _set(f"{IMAGE}.data", np.zeros(3 * FRAME * FRAME - 3, np.uint8)),
             f"{3 * FRAME * FRAME - 3} bytes: expected step {3 * FRAME} and "
             f"{3 * FRAME * FRAME} bytes"),
    _episode("one row too many", _set(f"{IMAGE}.data", np.zeros(3 * FRAME * (FRAME + 1),
                                                                np.uint8)),
             f"{3 * FRAME * (FRAME + 1)} bytes: expected"),
    _episode("width one more than the data", _set(f"{IMAGE}.width", FRAME + 1),
             f"image of {FRAME + 1}x{FRAME} has step {3 * FRAME}"),
    _episode("a 0x0 image", _resize(0, lambda m: [m.steps[0].observation.image]),
             "step 0 observation: image of type ndarray, dtype uint8, shape (0, 0, 3): "
             "expected a uint8 H x W x 3 RGB array"),
    _episode("a frame of another size", _resize(6, lambda m: [m.steps[1].observation.image]),
             # the intake expects the first good episode's frame size from then on
             "step 1 observation: image 6x6 px: expected"),
    _episode("a final frame of another size", _resize(16, lambda m: [m.final_observation.image]),
             "final_observation: image 16x16 px: expected"),
    _episode("a final frame in bgr8", _set("final_observation.image.encoding", "bgr8"),
             "final_observation: image encoding 'bgr8'"),
    _episode("frames not the camera's", _resize(10),
             "step 0 observation: image 10x10 px: expected the 8x8 px frames of its camera",
             limits=EpisodeLimits(camera=CameraSpec(width=FRAME, height=FRAME))),
    _episode("frames smaller than the network's crop", _resize(6),
             "image shape (6, 6): expected at least (8, 8) for this model",
             limits=EpisodeLimits(min_image_size=FRAME)),
    _episode("no steps", _set("steps", []), "episode 'e1': steps []: expected at least one"),
    _episode("last step not done", _set(f"{S1}.done", False),
             "step 1: done False on the last step: expected True"),
    _episode("done before the last step", _set(f"{S0}.done", True),
             "step 0: done True before the last step (1): expected False"),
    _episode("reward NaN", _set(f"{S0}.reward", math.nan),
             "step 0: reward nan: expected a value in [-1, 1]"),
    _episode("reward 2", _set(f"{S1}.reward", 2.0), "step 1: reward 2.0: expected a value in"),
    _episode("reward -1.5", _set(f"{S0}.reward", -1.5), "step 0: reward -1.5: expected"),
    _episode("reward inf", _set(f"{S1}.reward", math.inf), "step 1: reward inf: expected"),
    _episode("Q value 1.5", _set(f"{S1}.q_value", 1.5),
             "step 1: q_value 1.5: expected NaN (no network scored it) or a value in [0, 1]"),
    _episode("Q value -inf", _set(f"{S1}.q_value", -math.inf), "step 1: q_value -inf"),
    _episode("termination 7", _set("termination", 7),
             "termination 7: expected one of 0 (LEARNED), 1 (SCRIPTED), 2 (MAX_STEPS)"),
    _episode("learned termination without the terminate bit",
             _set(f"{S1}.action.terminate", False),
             "step 1 action terminate False: expected True, as the termination is LEARNED"),
    _episode("zero bytes", None, f"0 {NO_EPISODE}", raw=lambda cdr: b""),
    _episode("truncated CDR", None, NO_EPISODE, raw=lambda cdr: cdr[:len(cdr) // 2]),
    _episode("CDR without its last byte", None, NO_EPISODE, raw=lambda cdr: cdr[:-1]),
    _episode("random bytes", None, NO_EPISODE, raw=lambda cdr: bytes(
        np.random.default_rng(1).integers(0, 256, 300, np.uint8))),
    _episode("a std_msgs/String", None, NO_EPISODE,
             raw=lambda cdr: b"\x00\x01\x00\x00\x06\x00\x00\x00hello\x00"),
]


def run_episode(bench: Bench, case: Case) -> Outcome:
    limits = case.option or EpisodeLimits()
    data = case.make(bench)
    error = _raised(lambda: deserialize_episode(data, limits))
    logged: list[str] = []
    intake = EpisodeIntake(limits, logged.append)
    taken = [intake.take(x) for x in (bench.cdr, data, bench.cdr)]
    kept = taken[0] is not None and taken[2] is not None and taken[1] is None
    return Outcome(case, error, logged, 1, lost=not kept or intake.rejected != 1)


# -- Observation requests (SelectAction on a running policy node) --------------------------------


def _request(name: str, change: Callable[[Any], None], expected: str) -> Case:
    return Case("SelectAction request", name, change, expected, RuntimeError)


def _image_of(size: int, encoding: str = "rgb8") -> Callable[[Any], None]:
    def change(request: Any) -> None:
        from qtopt_policy.msg_conversions import image_to_msg

        request.observation.image = image_to_msg(np.zeros((size, size, 3), np.uint8))
        request.observation.image.encoding = encoding
    return change


OBS = "observation"
REQUEST_CASES = [
    _request("encoding bgr8", _set(f"{OBS}.image.encoding", "bgr8"),
             "image encoding 'bgr8': expected 'rgb8'"),
    _request("encoding mono8, one byte per pixel", lambda r: (
        _set(f"{OBS}.image.encoding", "mono8")(r), _set(f"{OBS}.image.step", MODEL_FRAME)(r)),
        "image encoding 'mono8': expected 'rgb8'"),
    _request("3 bytes short", lambda r: setattr(r.observation.image, "data",
                                                bytes(r.observation.image.data)[:-3]),
             f"has step {3 * MODEL_FRAME} and {3 * MODEL_FRAME ** 2 - 3} bytes: expected"),
    _request("row step too short", _set(f"{OBS}.image.step", 3 * MODEL_FRAME - 3),
             f"has step {3 * MODEL_FRAME - 3}"),
    _request("a huge image announced, no data", lambda r: (
        _set(f"{OBS}.image.width", 100_000)(r), _set(f"{OBS}.image.height", 100_000)(r),
        _set(f"{OBS}.image.step", 300_000)(r), _set(f"{OBS}.image.data", b"")(r)),
        "image of 100000x100000 has step 300000 and 0 bytes: expected"),
    _request("an image smaller than the network's crop", _image_of(32),
             "image shape (32, 32): expected at least (64, 64) for this model"),
    _request("frames not the model's camera", _image_of(96),
             f"image 96x96 px: expected the {MODEL_FRAME}x{MODEL_FRAME} px frames of its camera"),
    _request("a 0x0 image", _image_of(0), "shape (0, 0, 3): expected a uint8 H x W x 3"),
    _request("height NaN", _set(f"{OBS}.height_to_bottom", math.nan),
             "height_to_bottom nan: expected a finite value"),
    # rclpy's setter refuses inf; a C++ client can send it, so the test sets it underneath
    _request("height -inf", _set(f"{OBS}._height_to_bottom", -math.inf),
             "height_to_bottom -inf: expected a finite value"),
    _request("an unknown policy", _set("policy", "bogus"),
             "policy 'bogus': expected one of ('greedy', 'noisy') or ''"),
]


def good_request():
    from qtopt_msgs.srv import SelectAction
    from qtopt_policy.msg_conversions import observation_to_msg

    request = SelectAction.Request(step=0, policy="")
    image = np.random.default_rng(0).integers(0, 256, (MODEL_FRAME, MODEL_FRAME, 3), np.uint8)
    request.observation = observation_to_msg(image, False, 0.2)
    return request


def run_request(bench: Bench, case: Case) -> Outcome:
    from qtopt_msgs.srv import SelectAction

    node = bench.policy_node
    request = good_request()
    case.make(request)
    response = node._on_select_action(request, SelectAction.Response())
    error = None if response.success else RuntimeError(response.message)
    after = node._on_select_action(good_request(), SelectAction.Response())
    served = after.success and after.model_version == 1 and math.isnan(response.q_value)
    return Outcome(case, error, lost=not served)


# -- parameters ---------------------------------------------------------------------------------


def _config(name: str, build: Callable[[], Any], expected: str) -> Case:
    return Case("parameters", name, build, expected, ValueError)


def _node_parameter(name: str, value: Any, expected: str) -> Case:
    return Case("parameters", f"ROS parameter {name}={value!r}", lambda: (name, value),
                expected, ValueError, "node")


def _policy_config(**kwargs: Any) -> Callable[[], Any]:
    def build() -> Any:
        from qtopt_policy.policy_server import PolicyServerConfig

        return PolicyServerConfig(**kwargs)
    return build


def _learner_config(**kwargs: Any) -> Callable[[], Any]:
    def build() -> Any:
        from qtopt_learner.learner_config import LearnerConfig

        return LearnerConfig(**kwargs)
    return build


def _built(module: str, name: str, **kwargs: Any) -> Callable[[], Any]:
    def build() -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(**kwargs)
    return build


LOG_REPLAY = ("qtopt_learner.distributed.log_replay", "LogReplayConfig")
NOISE = ("qtopt_policy.policies", "NoiseConfig")
CEM = ("qtopt_policy.cem", "CEMConfig")
TRAINER = ("qtopt_learner.trainer", "TrainerConfig")
EPISODE = ("qtopt_collector.episode", "EpisodeConfig")

PARAMETER_CASES = [
    _config("recorder max_bag_bytes 0", lambda: RecorderConfig(max_bag_bytes=0),
            "max_bag_bytes 0: expected >= 1"),
    _config("recorder max_bag_bytes a word", lambda: RecorderConfig(max_bag_bytes="big"),
            "max_bag_bytes 'big': expected an integer >= 1"),
    _config("recorder max_episodes_per_bag 2.5",
            lambda: RecorderConfig(max_episodes_per_bag=2.5),
            "max_episodes_per_bag 2.5: expected an integer >= 1"),
    _config("recorder camera not JSON", lambda: RecorderConfig(camera="72x72"),
            "camera '72x72': expected CameraSpec JSON"),
    _config("recorder camera of negative width", lambda: RecorderConfig(
        camera='{"width": -1}'), "expected CameraSpec JSON (width -1: expected"),
    _config("policy default_policy best", _policy_config(default_policy="best"),
            "default_policy 'best': expected one of ('greedy', 'noisy')"),
    _config("policy reload_period_s -1", _policy_config(reload_period_s=-1.0),
            "reload_period_s -1.0: expected >= 0"),
    _config("policy image_size true", _policy_config(image_size=True),
            "image_size True: expected an integer >= 0"),
    _config("policy seed -1", _policy_config(seed=-1), "seed -1: expected >= 0"),
    _config("policy device gpu0", _policy_config(device="gpu0"),
            "device 'gpu0': expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    _config("noise epsilon 1.5", _built(*NOISE, epsilon=1.5), "epsilon 1.5: expected in [0, 1]"),
    _config("noise epsilon NaN", _built(*NOISE, epsilon=math.nan), "epsilon nan: expected"),
    _config("noise pose_std_fraction -0.1", _built(*NOISE, pose_std_fraction=-0.1),
            "pose_std_fraction -0.1: expected >= 0"),
    _config("CEM num_samples 0", _built(*CEM, num_samples=0), "num_samples 0: expected >= 1"),
    _config("CEM iterations a string", _built(*CEM, iterations="2"),
            "iterations '2': expected an integer >= 1"),
    _config("log replay readers 0", _built(*LOG_REPLAY, readers=0), "readers 0: expected >= 1"),
    _config("log replay chunk_episodes 8.5", _built(*LOG_REPLAY, chunk_episodes=8.5),
            "chunk_episodes 8.5: expected an integer >= 1"),
    _config("trainer lr 0", _built(*TRAINER, lr=0.0), "lr 0.0: expected > 0"),
    _config("trainer polyak 1", _built(*TRAINER, polyak=1.0), "polyak 1.0: expected in [0, 1)"),
    _config("learner preset huge", _learner_config(preset="huge"),
            "preset 'huge': expected one of"),
    _config("learner engine spark", _learner_config(engine="spark"),
            "engine 'spark': expected one of"),
    _config("learner steps -1", _learner_config(steps=-1), "steps -1: expected >= 0"),
    _config("learner two trainers in process", _learner_config(trainers=2),
            "trainers 2: several training workers need the ray engine"),
    _config("learner device tpu", _learner_config(device="tpu"), "device 'tpu': expected"),
    _config("episode max_steps 0", _built(*EPISODE, max_steps=0),
            "max_steps 0: expected in [1, 1000]"),
    _config("episode termination height top", _built(*EPISODE, scripted_termination_height="top"),
            "scripted_termination_height 'top': expected one of ('next', 'state')"),
    _config("bounds max_rotation -1", lambda: ActionBounds(max_rotation=-1.0),
            "max_rotation -1.0: expected >= 0"),
    _config("bounds max_translation_xy NaN", lambda: ActionBounds(max_translation_xy=math.nan),
            "max_translation_xy nan: expected >= 0"),
    _config("camera fov 180", lambda: CameraSpec(width=72, height=72, fov_deg=180.0),
            "fov_deg 180.0: expected in [0, 180)"),
    _config("camera width a word", lambda: CameraSpec(width="wide"),
            "width 'wide': expected an integer >= 0"),
    _config("camera height 72.5", lambda: CameraSpec(width=72, height=72.5),
            "height 72.5: expected an integer >= 0"),
    _config("episode limits min_image_size -1", lambda: EpisodeLimits(min_image_size=-1),
            "min_image_size -1: expected >= 0"),
    _node_parameter("reload_period_s", -1.0, "parameter reload_period_s -1.0: expected a number "
                    ">= 0"),
    _node_parameter("reload_period_s", "soon", "parameter reload_period_s 'soon': expected a "
                    "number >= 0"),
    _node_parameter("image_size", 2.5, "parameter image_size 2.5: expected an integer >= 0"),
    _node_parameter("seed", True, "parameter seed True: expected an integer >= 0"),
    _node_parameter("noise.epsilon", 1.5, "parameter noise.epsilon 1.5: expected a number in "
                    "[0, 1]"),
    _node_parameter("model_path", 5, "parameter model_path 5: expected a string"),
    _node_parameter("default_policy", "best", "parameter default_policy 'best': expected one"),
    _node_parameter("device", "gpu0", "parameter device 'gpu0': expected 'auto'"),
]


def run_parameters(bench: Bench, case: Case) -> Outcome:
    if case.option != "node":
        return Outcome(case, _raised(case.make))
    import rclpy
    from rclpy.parameter import Parameter

    from qtopt_policy.policy_server import PolicyServerConfig
    from qtopt_policy.ros_params import declare_config

    name, value = case.make()
    node = rclpy.create_node("bad_parameter", context=bench.ros_context,
                             parameter_overrides=[Parameter(name, value=value)])
    try:
        return Outcome(case, _raised(lambda: declare_config(node, PolicyServerConfig)))
    finally:
        node.destroy_node()


# -- model files --------------------------------------------------------------------------------


def _member(name: str) -> Callable[[Path], int]:
    """Offset of the middle of the data of the archive member whose name ends with ``name``."""
    def where(path: Path) -> int:
        data = path.read_bytes()
        with zipfile.ZipFile(path) as archive:
            member = next(i for i in archive.infolist() if i.filename.endswith(name))
        name_length, extra_length = struct.unpack_from("<HH", data, member.header_offset + 26)
        return member.header_offset + 30 + name_length + extra_length + member.compress_size // 2
    return where


def _local_name(index: int) -> Callable[[Path], int]:
    """Offset of the second character of member ``index``'s name in its local header."""
    def where(path: Path) -> int:
        with zipfile.ZipFile(path) as archive:
            return archive.infolist()[index].header_offset + 31
    return where


def _central(name: str) -> Callable[[Path], int]:
    """Offset of the last character of ``name`` in the archive's central directory."""
    return lambda path: path.read_bytes().rindex(name.encode()) + len(name) - 1


def _model_bytes(change: Callable[[bytes], bytes]) -> Callable[[Bench, Path], Path]:
    def make(bench: Bench, out: Path) -> Path:
        out.write_bytes(change(bench.model.read_bytes()))
        return out
    return make


def _model_flip(where: Callable[[Path], int]) -> Callable[[Bench, Path], Path]:
    def make(bench: Bench, out: Path) -> Path:
        data = bytearray(bench.model.read_bytes())
        data[where(bench.model)] ^= 0x10
        out.write_bytes(bytes(data))
        return out
    return make


def _metadata(change: Callable[[dict], Any] = lambda meta: None, text: str = ""
              ) -> Callable[[Bench, Path], Path]:
    """The good model with its metadata JSON changed in place by ``change``, or replaced by
    ``text``."""
    def make(bench: Bench, out: Path) -> Path:
        with zipfile.ZipFile(bench.model) as source, zipfile.ZipFile(out, "w") as target:
            for info in source.infolist():
                data = source.read(info)
                if info.filename.endswith("qtopt_metadata.json"):
                    meta = json.loads(data)
                    change(meta)
                    data = (text or json.dumps(meta)).encode()
                target.writestr(info, data)
        return out
    return make


def _other_file(write: Callable[[Path], None]) -> Callable[[Bench, Path], Path]:
    def make(bench: Bench, out: Path) -> Path:
        write(out)
        return out
    return make


def _save_foreign(out: Path) -> None:
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(out))


def _save_checkpoint(out: Path) -> None:
    import torch

    torch.save({"weights": torch.zeros(2)}, out)


def _model(name: str, make: Callable[[Bench, Path], Path], expected: str,
           consumer: str = "server") -> Case:
    return Case("model file", name, make, expected, ValueError if consumer != "server"
                else ModelLoadError, consumer)


NOT_ARCHIVE = "is not a TorchScript archive"
CORRUPT = "is corrupt:"
MODEL_CASES = [
    _model("zero-length", _model_bytes(lambda data: b""), NOT_ARCHIVE),
    _model("truncated at 10 %", _model_bytes(lambda data: data[:len(data) // 10]), NOT_ARCHIVE),
    _model("truncated at 50 %", _model_bytes(lambda data: data[:len(data) // 2]), NOT_ARCHIVE),
    _model("truncated at 90 %", _model_bytes(lambda data: data[:9 * len(data) // 10]),
           NOT_ARCHIVE),
    _model("last byte missing", _model_bytes(lambda data: data[:-1]), NOT_ARCHIVE),
    _model("random bytes", _model_bytes(lambda data: bytes(
        np.random.default_rng(2).integers(0, 256, 4096, np.uint8))), NOT_ARCHIVE),
    _model("a text file", _model_bytes(lambda data: b"not a model\n"), NOT_ARCHIVE),
    _model("bit flip in the pickled module", _model_flip(_member("/data.pkl")),
           "data.pkl fails its checksum"),
    _model("bit flip in the scripted code", _model_flip(_member(".py")),
           ".py fails its checksum or header check"),
    _model("bit flip in the metadata", _model_flip(_member("qtopt_metadata.json")),
           "qtopt_metadata.json fails its checksum"),
    _model("bit flip in the weights", _model_flip(_member("/constants/3")), "fails its checksum"),
    _model("bit flip in a member's local header", _model_flip(_local_name(1)), CORRUPT),
    _model("bit flip in the central directory", _model_flip(_central("data.pkl")), CORRUPT),
    _model("bit flip in the end-of-archive record", _model_flip(
        lambda path: path.stat().st_size - 22 + 1), NOT_ARCHIVE),
    _model("a foreign TorchScript module", _other_file(_save_foreign),
           "has no qtopt_metadata.json: not a qtopt model"),
    _model("a torch.save checkpoint", _other_file(_save_checkpoint),
           "holds no TorchScript code (a torch.save checkpoint?)"),
    _model("metadata not JSON", _metadata(text="{not json"),
           "has bad metadata: JSONDecodeError"),
    _model("metadata format_version 2", _metadata(lambda meta: meta.update(format_version=2)),
           "model format_version 2: expected 1"),
    _model("metadata of another action size", _metadata(lambda meta: meta.update(action_dim=9)),
           "model action_dim 9 / low_dim_state_dim 2: expected 8 / 2"),
    _model("metadata without a preset", _metadata(lambda meta: meta.pop("preset")),
           "has bad metadata: KeyError('preset')"),
    _model("metadata with a bad camera", _metadata(
        lambda meta: meta.update(camera={"width": -5})), "has bad metadata: ValueError"),
    _model("another network input size than the serving one",
           lambda bench, out: bench.export(out.name, "sim96", version=2),
           "takes 96 px images: expected 64"),
    _model("an older version than the serving one",
           lambda bench, out: bench.export(out.name, "sim", version=0),
           "has version 0, older than the serving 1"),
    _model("the wrong preset for the command",
           lambda bench, out: bench.model, "a 'sim' model; expected a 'sim96' model", "preset"),
    _model("trained with another camera than the cell's",
           lambda bench, out: bench.model, "was trained with camera 72x72 px", "camera"),
    _model("a missing file", lambda bench, out: out, "does not exist"),
]


def run_model(bench: Bench, case: Case) -> Outcome:
    path = case.make(bench, bench.folder() / "bad.pt")
    if case.option == "preset":
        from qtopt_policy.usage import check_model

        return Outcome(case, _raised(lambda: check_model("--model", str(path), "sim96")))
    if case.option == "camera":
        from qtopt_collector.evaluation import check_camera
        from qtopt_collector.sim_cell import SimCellConfig
        from qtopt_policy.policies import PolicySource

        cell = SimCellConfig(camera_width=96, camera_height=96)
        source = PolicySource(model_path=str(path))
        return Outcome(case, _raised(lambda: check_camera(source, cell)))
    server = bench.server
    serving = server.model
    error = _raised(lambda: server.load(path))
    return Outcome(case, error, lost=server.model is not serving)


# -- the whole table ----------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Bench, Case], Outcome]] = {
    "MCAP file": run_mcap, "metadata.yaml": run_metadata, "Episode message": run_episode,
    "SelectAction request": run_request, "parameters": run_parameters, "model file": run_model,
}
CASES: list[Case] = (MCAP_CASES + METADATA_CASES + EPISODE_CASES + REQUEST_CASES
                     + PARAMETER_CASES + MODEL_CASES)


def run(bench: Bench, case: Case) -> Outcome:
    return RUNNERS[case.group](bench, case)


def counts(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """Per group: cases tried, with a clear error, where loss applies, and with nothing lost."""
    table: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        row = table.setdefault(outcome.case.group, dict.fromkeys(
            ("tried", "clear", "applies", "kept"), 0))
        row["tried"] += 1
        row["clear"] += outcome.clear
        if outcome.lost is not None:
            row["applies"] += 1
            row["kept"] += not outcome.lost
    return table

