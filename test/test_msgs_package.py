from conftest import assert_ament_package_installed


def test_msgs_package_is_indexed_with_its_interface_definitions():
    share = assert_ament_package_installed("qtopt_msgs")
    names = {p.name for p in share.rglob("*") if p.suffix in {".msg", ".srv", ".action"}}
    assert {"GraspAction.msg", "Observation.msg", "Transition.msg", "Episode.msg",
            "ModelUpdate.msg", "SelectAction.srv", "RunEpisode.action"} <= names
