from conftest import assert_ament_package_installed


def test_policy_package_is_indexed():
    assert_ament_package_installed("qtopt_policy")
