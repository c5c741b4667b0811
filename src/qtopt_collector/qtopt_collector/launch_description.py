"""A node graph (``graph.NodeSpec`` list) as a ``launch`` description, for the launch files.

``launch`` and ``launch_ros`` exist only on a real ROS 2 install (not on PyPI), so they are
imported when a launch file asks for its description. Every graph gets a ``discovery_range``
argument: LOCALHOST (the default) keeps DDS on this machine with the loopback Fast DDS
profile; SUBNET is for robot drivers on another computer.
"""

from __future__ import annotations

from collections.abc import Callable

from qtopt_collector.graph import NodeSpec
from qtopt_policy.ros_env import fastdds_profile_path

DISCOVERY_RANGE = ("LOCALHOST", "ROS_AUTOMATIC_DISCOVERY_RANGE for the launched nodes")


def graph_launch_description(arguments: dict[str, tuple[str, str]],
                             specs: Callable[[dict[str, str]], list[NodeSpec]]):
    """Declare ``arguments`` (name: (default, description)) and launch ``specs(values)``."""
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from launch import LaunchDescription

    arguments = {**arguments, "discovery_range": DISCOVERY_RANGE}

    def nodes(context):
        values = {name: LaunchConfiguration(name).perform(context) for name in arguments}
        actions = []
        if values["discovery_range"] == "LOCALHOST":
            actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE",
                                                  str(fastdds_profile_path())))
        actions += [
            Node(package=s.package, executable=s.executable, namespace=s.namespace or None,
                 name=s.name or None, parameters=[s.parameters], output="screen")
            for s in specs(values)
        ]
        return actions

    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=doc)
         for name, (default, doc) in arguments.items()]
        + [SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE",
                                  LaunchConfiguration("discovery_range")),
           OpaqueFunction(function=nodes)]
    )
