from glob import glob

from setuptools import setup

package_name = "qtopt_learner"

# Metadata and packages are in setup.cfg; what names this package's files is here.
setup(
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
    ],
    entry_points={"console_scripts": [
        "qtopt = qtopt_learner.app.cli:main",
        "learner_node = qtopt_learner.learner_node:main",
    ]},
)
