"""Recording: real rosbag2 MCAP bags, independent readers, crash safety, rotation, provenance,
and the steps on standard topics."""

import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader

from qtopt_collector import mcap_integrity
from qtopt_collector.bag_files import find_bags
from qtopt_collector.bag_format import serialize_episode
from qtopt_collector.bag_recorder import (
    BagRecorder,
    RecorderConfig,
    bag_provenance,
    read_episodes,
    repair_bag,
)
from qtopt_collector.episode import run_episode
from qtopt_collector.sim_cell import SimCell, SimCellConfig
from qtopt_msgs.msg import Episode
from qtopt_policy.policies import ScriptedGraspPolicy
from qtopt_policy.spec import ActionBounds, CameraSpec


@pytest.fixture(scope="module")
def episodes():
    cell = SimCell(SimCellConfig(min_objects=2, max_objects=4))
    try:
        return [run_episode(cell, ScriptedGraspPolicy(ActionBounds()), s) for s in range(4)]
    finally:
        cell.close()


def test_round_trip_and_three_independent_readers(tmp_path, episodes):
    rec = BagRecorder(RecorderConfig(out_dir=str(tmp_path)))
    for ep in episodes:
        rec.write(ep)
    back = list(read_episodes(tmp_path))
    assert [b.episode_id for b in back] == [e.episode_id for e in episodes]
    for a, b in zip(episodes, back, strict=True):
        assert b.success == a.success and b.ground_truth == a.ground_truth
        assert len(b.steps) == len(a.steps)
        assert (b.steps[0].observation.image == a.steps[0].observation.image).all()
        assert b.total_reward == pytest.approx(a.total_reward, abs=1e-5)
    (bag,) = find_bags(tmp_path)
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 9 and info["storage_identifier"] == "mcap"
    steps = sum(len(e.steps) for e in episodes)  # each with a frame, a gripper bit, a height
    assert info["message_count"] == 4 + 3 * steps and len(info["relative_file_paths"]) == 4
    with Reader(bag) as reader:  # rosbags, through metadata.yaml
        raw = [data for _, _, data in reader.messages(
            [c for c in reader.connections if c.topic == "/episodes"])]
    assert deserialize_message(raw[2], Episode).episode_id == episodes[2].episode_id  # rclpy
    decoded = []
    for name in info["relative_file_paths"]:  # the mcap package, file by file
        with open(bag / name, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            decoded += [m.episode_id for _, _, _, m in reader.iter_decoded_messages(
                topics=["/episodes"])]
    assert decoded == [e.episode_id for e in episodes]


def test_bags_rotate_by_size(tmp_path, episodes):
    first = BagRecorder(RecorderConfig(out_dir=str(tmp_path / "probe"))).write(episodes[0])
    file_size = next(first.glob("*.mcap")).stat().st_size
    # A bag closes once its files reach the limit: here after two episodes.
    rec = BagRecorder(RecorderConfig(out_dir=str(tmp_path / "rot"),
                                     max_bag_bytes=int(1.5 * file_size)))
    for _ in range(4):
        rec.write(episodes[0])
    bags = find_bags(tmp_path / "rot")
    assert [len(list(b.glob("*.mcap"))) for b in bags] == [2, 2]
    assert len(list(read_episodes(tmp_path / "rot"))) == 4


def test_repair_lists_orphans_and_drops_leftovers(tmp_path, episodes):
    rec = BagRecorder(RecorderConfig(out_dir=str(tmp_path)))
    bag = rec.write(episodes[0])
    rec.write(episodes[1])
    # Simulate a kill between the rename and the metadata update, and one mid-write.
    info_path = bag / "metadata.yaml"
    info = yaml.safe_load(info_path.read_text())
    files = info["rosbag2_bagfile_information"]
    files["relative_file_paths"] = files["relative_file_paths"][:1]
    files["files"] = files["files"][:1]
    files["message_count"] = 1
    info_path.write_text(yaml.safe_dump(info))
    (bag / ".tmp_7").mkdir()
    (bag / ".tmp_7" / "half.mcap").write_bytes(b"\x89MCAP0\r\n garbage")
    assert len(list(read_episodes(tmp_path))) == 1
    assert repair_bag(bag) == 1
    assert not list(bag.glob(".tmp_*"))
    assert [e.episode_id for e in read_episodes(tmp_path)] == ["cell0-0", "cell0-1"]


def test_a_corrupt_bag_is_reported_and_skipped(tmp_path, episodes, caplog):
    good = BagRecorder(RecorderConfig(out_dir=str(tmp_path / "a"))).write(episodes[0])
    bad = BagRecorder(RecorderConfig(out_dir=str(tmp_path / "b"))).write(episodes[1])
    (mcap_file,) = bad.glob("*.mcap")
    mcap_file.write_bytes(mcap_file.read_bytes()[: mcap_file.stat().st_size // 2])
    ids = [e.episode_id for e in read_episodes(tmp_path)]
    assert ids == ["cell0-0"]
    assert str(bad) in caplog.text and "skipped" in caplog.text
    assert good.exists()


WRITER = """
import sys, time
from qtopt_collector.bag_format import deserialize_episode, serialize_episode
from qtopt_collector.bag_recorder import BagRecorder, RecorderConfig
data = open(sys.argv[2], "rb").read()
rec = BagRecorder(RecorderConfig(out_dir=sys.argv[1], cell_id="crash"))
for i in range(100000):
    rec.write_serialized(data)
    print(i, flush=True)
"""


@pytest.mark.slow
def test_kill_9_mid_recording_loses_nothing_already_written(tmp_path, episodes):
    payload = tmp_path / "episode.cdr"
    payload.write_bytes(serialize_episode(episodes[0]))
    out = tmp_path / "bags"
    total_reported = 0
    for delay in (0.9, 1.3, 1.7, 2.2, 2.6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out), str(payload)],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        written = proc.stdout.read().split()
        proc.wait()
        total_reported += len(written)  # each line is one finished episode
        # Every episode the writer finished is readable; at most the one in flight is lost.
        BagRecorder(RecorderConfig(out_dir=str(out), cell_id="crash"))  # repairs on start
        recorded = list(read_episodes(out))
        assert total_reported <= len(recorded) <= total_reported + 5
        assert all(r.episode_id == episodes[0].episode_id for r in recorded)
    assert total_reported > 5


def test_bags_also_rotate_by_episode_count(tmp_path, episodes):
    rec = BagRecorder(RecorderConfig(out_dir=str(tmp_path), max_episodes_per_bag=3))
    for _ in range(7):
        rec.write(episodes[0])
    assert [len(list(b.glob("*.mcap"))) for b in find_bags(tmp_path)] == [3, 3, 1]


def test_bags_record_camera_and_label_source(tmp_path, episodes):
    camera = SimCellConfig().camera()
    rec = BagRecorder(RecorderConfig(out_dir=str(tmp_path / "p"), camera=camera.to_json(),
                                     label_source="truth"))
    bag = rec.write(episodes[0])
    rec.write(episodes[1])
    provenance = bag_provenance(bag)
    assert provenance == {"camera": camera.to_json(), "label_source": "truth"}
    assert CameraSpec.from_json(provenance["camera"]) == camera
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 9 and info["custom_data"] == {
        "qtopt.camera": camera.to_json(), "qtopt.label_source": "truth"}
    with Reader(bag) as reader:  # rosbags still reads the bag (it keeps custom_data private)
        assert len(list(reader.messages(
            [c for c in reader.connections if c.topic == "/episodes"]))) == 2
    # a kill before metadata.yaml was first written: the files' own copy restores it
    (bag / "metadata.yaml").unlink()
    assert repair_bag(bag) == 2 and bag_provenance(bag) == provenance
    assert len(list(read_episodes(tmp_path / "p"))) == 2
    plain = BagRecorder(RecorderConfig(out_dir=str(tmp_path / "q"))).write(episodes[0])
    assert bag_provenance(plain) == {}
    with pytest.raises(ValueError, match="expected CameraSpec JSON"):
        RecorderConfig(camera="72x72")


IMAGE_TOPIC = "/cell0/camera/image_raw"
COMPRESSED_TOPIC = "/cell0/camera/image_raw/compressed"


def _bag_messages(bag):
    """(topic, schema name, log time, decoded message) of every message in ``bag``'s files, in
    the order metadata.yaml lists them, read with the mcap packages alone."""
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    messages = []
    for name in info["relative_file_paths"]:
        with open(bag / name, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            messages += [(c.topic, s.name, m.log_time, msg)
                         for s, c, m, msg in reader.iter_decoded_messages()]
    return messages


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _decoded(msg) -> np.ndarray:
    """The RGB pixels of a decoded Image (rgb8) or CompressedImage message."""
    if hasattr(msg, "format"):
        bgr = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    assert msg.encoding == "rgb8"
    return np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)


@pytest.mark.parametrize("image_format, topic, schema", [
    ("raw", IMAGE_TOPIC, "sensor_msgs/msg/Image"),
    ("png", COMPRESSED_TOPIC, "sensor_msgs/msg/CompressedImage")])
def test_steps_on_standard_topics_read_with_mcap_alone(tmp_path, episodes, image_format, topic,
                                                       schema):
    rec = BagRecorder(RecorderConfig(out_dir=str(tmp_path), step_image_format=image_format))
    for ep in episodes:
        bag = rec.write(ep)
    messages = _bag_messages(bag)
    frames = [m for m in messages if m[0] == topic]
    steps = [s.observation for e in episodes for s in e.steps]
    assert len(frames) == len(steps) == sum(len(e.steps) for e in episodes)
    assert {m[1] for m in frames} == {schema}
    for (_, _, log_time, msg), obs in zip(frames, steps, strict=True):
        assert msg.header.frame_id == "camera_optical_frame" and _stamp_ns(msg) == log_time
        assert getattr(msg, "format", "raw") == image_format
        assert np.array_equal(_decoded(msg), obs.image)  # lossless
    stamps = [m[2] for m in messages]
    assert stamps == sorted(stamps)  # across episodes: ros2 bag play keeps their order
    frame_stamps = [m[2] for m in frames]
    assert frame_stamps == sorted(set(frame_stamps))  # strictly increasing
    gripper = [m for m in messages if m[0] == "/cell0/gripper/closed"]
    height = [m for m in messages if m[0] == "/cell0/gripper/height_to_bottom"]
    assert {m[1] for m in gripper} == {"std_msgs/msg/Bool"}
    assert {m[1] for m in height} == {"std_msgs/msg/Float32"}
    assert [m[3].data for m in gripper] == [o.gripper_closed for o in steps]
    assert [m[3].data for m in height] == pytest.approx([o.height_to_bottom for o in steps])
    assert [m[2] for m in gripper] == [m[2] for m in height] == [m[2] for m in frames]
    # Each Episode message follows its own steps and precedes the next episode's.
    topics = [m[0] for m in messages]
    ends = [i for i, t in enumerate(topics) if t == "/episodes"]
    assert ends == list(np.cumsum([3 * len(e.steps) + 1 for e in episodes]) - 1)
    # The replay's transitions are the ones recorded, step topics or not.
    back = list(read_episodes(tmp_path))
    assert [e.episode_id for e in back] == [e.episode_id for e in episodes]
    for a, b in zip(episodes, back, strict=True):
        assert len(a.steps) == len(b.steps) and a.success == b.success
        for x, y in zip(a.steps + [a.final_observation], b.steps + [b.final_observation],
                        strict=True):
            x_obs, y_obs = getattr(x, "observation", x), getattr(y, "observation", y)
            assert np.array_equal(x_obs.image, y_obs.image)
            assert x_obs.gripper_closed == y_obs.gripper_closed
        for x, y in zip(a.steps, b.steps, strict=True):
            assert y.action.to_vector() == pytest.approx(x.action.to_vector(), abs=1e-6)
            assert (y.reward, y.done) == (pytest.approx(x.reward), x.done)


def test_jpeg_frames_and_no_step_topics(tmp_path, episodes):
    rec = BagRecorder(RecorderConfig(out_dir=str(tmp_path / "jpeg"), step_image_format="jpeg"))
    bag = rec.write(episodes[0])
    messages = _bag_messages(bag)
    frames = [m for m in messages if m[0] == COMPRESSED_TOPIC]
    assert len(frames) == len(episodes[0].steps)
    assert {m[1] for m in frames} == {"sensor_msgs/msg/CompressedImage"}
    assert IMAGE_TOPIC not in {m[0] for m in messages}
    for (_, _, _, msg), step in zip(frames, episodes[0].steps, strict=True):
        assert msg.format == "jpeg"
        # quality 95 without chroma subsampling
        assert cv2.PSNR(_decoded(msg), step.observation.image) > 35
    off = BagRecorder(RecorderConfig(out_dir=str(tmp_path / "off"), step_topics=False))
    assert {m[0] for m in _bag_messages(off.write(episodes[0]))} == {"/episodes"}
    with pytest.raises(ValueError, match="step_image_format 'gif'"):
        RecorderConfig(step_image_format="gif")


def test_step_stamps_stay_monotonic_when_episodes_come_faster_than_their_steps(tmp_path,
                                                                              episodes):
    rec = BagRecorder(RecorderConfig(out_dir=str(tmp_path)))
    data = serialize_episode(episodes[0])
    for _ in range(3):  # all at one clock reading: each episode's steps move after the last
        bag = rec.write_serialized(data, stamp_ns=10**18)
    stamps = [m[2] for m in _bag_messages(bag)]
    assert stamps == sorted(stamps) and stamps[-1] > 10**18
    frame_stamps = [m[2] for m in _bag_messages(bag) if m[0] == IMAGE_TOPIC]
    assert frame_stamps == sorted(set(frame_stamps)) and len(frame_stamps) == 3 * len(
        episodes[0].steps)


def test_repair_keeps_the_step_topics(tmp_path, episodes):
    rec = BagRecorder(RecorderConfig(out_dir=str(tmp_path)))
    bag = rec.write(episodes[0])
    rec.write(episodes[1])
    before = _bag_messages(bag)
    (bag / "metadata.yaml").unlink()  # a kill before the bag's metadata was written
    assert repair_bag(bag) == 2
    after = _bag_messages(bag)
    assert [(t, s, stamp) for t, s, stamp, _ in after] == [
        (t, s, stamp) for t, s, stamp, _ in before]
    for file in bag.glob("*.mcap"):
        mcap_integrity.check(file.read_bytes())  # sealed again
