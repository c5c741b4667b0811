from setuptools import find_packages, setup

package_name = "qtopt_policy"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={package_name: ["resources/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="qtopt-ros developers",
    maintainer_email="dev@qtopt-ros.org",
    description="QT-Opt MDP spec, Q-network, CEM, policies, TorchScript and the policy node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "policy_node = qtopt_policy.policy_node:main",
            "transport_check = qtopt_policy.transport_check:main",
        ],
    },
)
