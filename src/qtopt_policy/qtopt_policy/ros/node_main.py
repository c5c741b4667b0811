"""The one ``main()`` every qtopt node process uses (ros2/examples style).

Initialize rclpy, build the nodes, spin them on an executor, stop cleanly on Ctrl-C or SIGTERM
(``KeyboardInterrupt`` / ``ExternalShutdownException``), destroy the nodes, ``try_shutdown``.
A multi-threaded executor may instead meet the context that the signal handler already shut
down while it builds its next wait set (``RCLError``); that is a clean stop too.
"""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node


def spin_nodes(make_nodes: Callable[[], list[Node]], threads: int = 1,
               args: list[str] | None = None) -> int:
    """Run the nodes until shutdown; ``threads`` > 1 uses a multi-threaded executor (for
    callbacks that wait on other callbacks, such as long CEM work or nested service calls)."""
    rclpy.init(args=args)
    nodes: list[Node] = []
    try:
        nodes = make_nodes()
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
