"""Issue 17, bad inputs: every malformed input in the table (test/bad_inputs.py) gets one error
line naming the value and what was expected, and where data or a running consumer is involved,
nothing is lost: the good episodes beside a damaged file are read, a node takes the next good
message, a policy keeps serving its model. ``bench/bad_input_table.py`` prints the counts."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from mcap.stream_reader import CRCValidationError, StreamReader

from qtopt_collector.bag_recorder import read_episodes

from .bad_inputs import CASES, EPISODE_CASES, RUNNERS, Bench, run

ROS_GROUPS = ("SelectAction request",)  # and the parameter cases on real rclpy nodes


def _param(case):
    ros = case.group in ROS_GROUPS or case.option == "node"
    return pytest.param(case, id=f"{case.group}: {case.name}",
                        marks=[pytest.mark.ros] if ros else [])


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    bench = Bench(tmp_path_factory.mktemp("bad_inputs"))
    yield bench
    bench.close()


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_a_bad_input_gets_one_clear_line_and_loses_nothing(bench, case):
    outcome = run(bench, case)
    assert outcome.problems() == [], outcome.message


def test_the_table_has_over_100_cases_in_every_group():
    assert len(CASES) >= 100
    assert {c.group for c in CASES} == set(RUNNERS)
    names = [(c.group, c.name) for c in CASES]
    assert len(set(names)) == len(names)


def test_recorded_files_carry_checksums_other_readers_verify(bench):
    data = bench.mcap
    assert sum(1 for _ in StreamReader(io.BytesIO(data), validate_crcs=True).records) > 5
    damaged = bytearray(data)
    damaged[22] ^= 1  # "ros2" -> "rns2", the header's profile: only the data CRC covers it
    with pytest.raises(CRCValidationError):
        list(StreamReader(io.BytesIO(bytes(damaged)), validate_crcs=True).records)


@pytest.mark.ros
def test_the_recorder_node_records_the_good_episodes_around_a_malformed_one(bench, tmp_path):
    from rclpy.parameter import Parameter

    from qtopt_collector.recorder_node import RecorderNode

    node = RecorderNode(context=bench.ros_context, parameter_overrides=[
        Parameter("out_dir", value=str(tmp_path))])
    try:
        for data in (bench.cdr, EPISODE_CASES[0].make(bench), bench.cdr):
            node._on_episode(data)
        assert (node.intake.accepted, node.intake.rejected) == (2, 1)
        assert [e.episode_id for e in read_episodes(tmp_path)] == ["e1", "e1"]
    finally:
        node.destroy_node()


@pytest.mark.ros
def test_a_node_with_a_bad_parameter_exits_2_with_one_line(ros_domain):
    proc = subprocess.run(
        [sys.executable, "-m", "qtopt_policy.policy_node", "--ros-args", "-p",
         "reload_period_s:=-1.0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "error: parameter reload_period_s -1.0: expected a number >= 0" in proc.stderr
