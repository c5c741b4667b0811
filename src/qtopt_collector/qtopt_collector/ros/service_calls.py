"""Blocking service calls for nodes that orchestrate other nodes (success, episode runner).

Clients live in a reentrant callback group and the node spins on a multi-threaded executor, so
a service or action callback may wait here for another node's answer.
"""

from __future__ import annotations

from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.client import Client
from rclpy.node import Node


class ServiceCaller:
    def __init__(self, node: Node, timeout_s: float) -> None:
        self.node = node
        self.timeout_s = timeout_s
        self.group = ReentrantCallbackGroup()
        self.clients: dict[str, Client] = {}

    def client(self, srv_type: Any, name: str) -> Client:
        if name not in self.clients:
            self.clients[name] = self.node.create_client(srv_type, name, callback_group=self.group)
        return self.clients[name]

    def call(self, srv_type: Any, name: str, request: Any, ok_field: str | None = "success"
             ) -> Any:
        """Call and return the response; raise TimeoutError, or RuntimeError when the
        response's ``ok_field`` is false (None: the response carries no such verdict)."""
        client = self.client(srv_type, name)
        if not client.wait_for_service(timeout_sec=self.timeout_s):
            raise TimeoutError(f"service {client.srv_name} not available after {self.timeout_s} s")
        try:
            response = client.call(request, timeout_sec=self.timeout_s)
        except TimeoutError:  # rclpy since Jazzy raises it without a message; before: None
            response = None
        if response is None:
            raise TimeoutError(f"service {client.srv_name} did not answer in {self.timeout_s} s")
        if ok_field is not None and not getattr(response, ok_field):
            raise RuntimeError(f"service {client.srv_name} failed: {response.message}")
        return response
