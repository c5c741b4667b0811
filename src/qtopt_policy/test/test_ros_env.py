import os
import xml.etree.ElementTree as ET

import pytest

from qtopt_policy.ros_env import (
    fastdds_profile_path,
    lease_domain_id,
    ros_environment,
)

NS = {"f": "http://www.eprosima.com"}


def test_environment_keeps_discovery_local():
    env = ros_environment(17, base={"PATH": "/bin"})
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert env["ROS_DOMAIN_ID"] == "17"
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(fastdds_profile_path())
    assert env["PATH"] == "/bin"


@pytest.mark.parametrize("bad", [-1, 233, 1000])
def test_out_of_range_domain_is_rejected_with_its_value(bad):
    with pytest.raises(ValueError, match=str(bad)):
        ros_environment(bad)


def test_log_dir_is_created(tmp_path):
    env = ros_environment(3, tmp_path / "a" / "b")
    assert os.path.isdir(env["ROS_LOG_DIR"])


def test_profile_uses_only_shm_and_loopback_udp():
    root = ET.parse(fastdds_profile_path()).getroot()
    participant = root.find(".//f:participant", NS)
    assert participant.get("is_default_profile") == "true"
    assert participant.find(".//f:useBuiltinTransports", NS).text == "false"
    used = {e.text for e in participant.findall(".//f:userTransports/f:transport_id", NS)}
    descriptors = {
        d.find("f:transport_id", NS).text: d for d in root.findall(".//f:transport_descriptor", NS)
    }
    assert used == set(descriptors)
    kinds = {d.find("f:type", NS).text for d in descriptors.values()}
    assert kinds == {"SHM", "UDPv4"}
    for d in descriptors.values():
        if d.find("f:type", NS).text == "UDPv4":
            allowed = [a.text for a in d.findall("f:interfaceWhiteList/f:address", NS)]
            assert allowed == ["127.0.0.1"]


def test_leases_are_exclusive_and_released(tmp_path):
    with lease_domain_id(tmp_path) as a, lease_domain_id(tmp_path) as b:
        assert a != b
    # Released: the same directory can hand out every id again.
    with lease_domain_id(tmp_path) as c:
        assert c in range(1, 233)
