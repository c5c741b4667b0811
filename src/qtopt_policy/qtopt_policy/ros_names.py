"""The names of the suite's topics, services and actions, in one place so that the nodes that
create them and the graph description that declares them (``qtopt_collector.graph``) agree.
Plain strings without rclpy, so the description stays data.

Names without a leading "/" resolve in the node's namespace (a cell's, e.g. ``/cell0``); the
policy node and the learner run in the root namespace, one per fleet.
"""

from __future__ import annotations

# A cell's devices (sim_cell_node in simulation, device_nodes on a real cell).
CAMERA_IMAGE_TOPIC = "camera/image_raw"
CAMERA_CAPTURE_SERVICE = "camera/capture"
ARM_COMMAND_SERVICE = "arm/command"
RESET_CELL_SERVICE = "cell/reset"
GRIPPER_COMMAND_SERVICE = "gripper/command"
GRIPPER_CLOSED_TOPIC = "gripper/closed"
HELD_OBJECT_SERVICE = "sim/held_object"  # simulator only: the grasp's ground truth

# A cell's success detector, episode runner and recorder.
SUCCESS_DETECT_SERVICE = "success/detect"
RUN_EPISODE_ACTION = "run_episode"
EPISODES_TOPIC = "episodes"
RECORDED_TOPIC = "recorded"

# The fleet's policy node and learner.
SELECT_ACTION_SERVICE = "select_action"
MODEL_UPDATES_TOPIC = "model_updates"
TRAINING_STATUS_TOPIC = "training_status"
