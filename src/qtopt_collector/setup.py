from glob import glob

from setuptools import setup

package_name = "qtopt_collector"

# Metadata and packages are in setup.cfg; what names this package's files is here.
setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
        (f"share/{package_name}/config", glob("config/*.yaml")),
    ],
    entry_points={
        "console_scripts": [
            "sim_cell_node = qtopt_collector.sim_cell_node:main",
            "success_node = qtopt_collector.success_node:main",
            "episode_runner_node = qtopt_collector.episode_runner_node:main",
            "episode_driver_node = qtopt_collector.episode_driver_node:main",
            "recorder_node = qtopt_collector.recorder_node:main",
            "arm_node = qtopt_collector.device_nodes:arm_main",
            "gripper_node = qtopt_collector.device_nodes:gripper_main",
            "camera_node = qtopt_collector.device_nodes:camera_main",
            "fake_kuka_controller_node = qtopt_collector.fake_kuka_controller_node:main",
        ],
    },
)
