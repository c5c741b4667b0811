from setuptools import setup

package_name = "qtopt_policy"

# Metadata and packages are in setup.cfg; what names this package's files is here.
setup(
    package_data={package_name: ["resources/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    entry_points={
        "console_scripts": [
            "policy_node = qtopt_policy.policy_node:main",
            "transport_check = qtopt_policy.ros.transport_check:main",
        ],
    },
)
