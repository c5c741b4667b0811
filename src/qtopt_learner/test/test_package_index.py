from conftest import assert_ament_package_installed


def test_learner_package_is_indexed():
    assert_ament_package_installed("qtopt_learner")
