from glob import glob

from setuptools import find_packages, setup

package_name = "qtopt_collector"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="qtopt-ros developers",
    maintainer_email="dev@qtopt-ros.org",
    description="QT-Opt grasping cell: sim, hardware adapters, success detection, recording.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "sim_cell_node = qtopt_collector.sim_cell_node:main",
            "success_node = qtopt_collector.success_node:main",
            "episode_runner_node = qtopt_collector.episode_runner_node:main",
            "recorder_node = qtopt_collector.recorder_node:main",
            "arm_node = qtopt_collector.device_nodes:arm_main",
            "gripper_node = qtopt_collector.device_nodes:gripper_main",
            "camera_node = qtopt_collector.device_nodes:camera_main",
            "fake_kuka_controller_node = qtopt_collector.fake_kuka_controller_node:main",
        ],
    },
)
