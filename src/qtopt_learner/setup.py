from setuptools import find_packages, setup

package_name = "qtopt_learner"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="qtopt-ros developers",
    maintainer_email="dev@qtopt-ros.org",
    description="QT-Opt learner: replay, Bellman updaters, training, fine-tuning, Ray.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "qtopt = qtopt_learner.app.cli:main",
        "learner_node = qtopt_learner.learner_node:main",
    ]},
)
