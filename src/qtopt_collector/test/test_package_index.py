from conftest import assert_ament_package_installed


def test_collector_package_is_indexed():
    assert_ament_package_installed("qtopt_collector")
