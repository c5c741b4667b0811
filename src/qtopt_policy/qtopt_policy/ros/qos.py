"""The QoS profiles of the suite's topics, in one place so that publishers and subscribers
in different packages agree."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# Model announcements: late joiners (a restarted policy node) get the newest one.
MODEL_UPDATE_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
# Live episodes: the learner must not lose one while it is busy; 100 buffer a burst of cells.
EPISODE_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                         history=HistoryPolicy.KEEP_LAST)
# Device status (the gripper's state): a late subscriber gets the current value.
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# The transport check's observations and acknowledgements: none may drop.
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
