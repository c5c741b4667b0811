"""The one ``main()`` every qtopt node process uses (ros2/examples style).

Initialize rclpy, build the nodes, spin them on an executor, stop cleanly on Ctrl-C or SIGTERM
(``KeyboardInterrupt`` / ``ExternalShutdownException``), destroy the nodes, ``try_shutdown``.
A multi-threaded executor may instead meet the context that the signal handler already shut
down while it builds its next wait set (``RCLError``); that is a clean stop too. A parameter
the node refuses ends it before any work with one ``<node>: error: ...`` line and status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node

from qtopt_policy.ros_params import ParameterError


def spin_nodes(make_nodes: Callable[[], list[Node]], threads: int = 1,
               args: list[str] | None = None) -> int:
    """Run the nodes until shutdown; ``threads`` > 1 uses a multi-threaded executor (for
    callbacks that wait on other callbacks, such as long CEM work or nested service calls)."""
    rclpy.init(args=args)
    nodes: list[Node] = []
    try:
        try:
            nodes = make_nodes()
        except ParameterError as err:  # before any work: one line, no traceback
            print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
            return 2
        executor: Executor = (MultiThreadedExecutor(num_threads=threads) if threads > 1
                              else SingleThreadedExecutor())
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        if rclpy.ok():
            raise
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
