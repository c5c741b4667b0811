"""The names commands offer as choices and configs check against, and the limits they share,
kept apart from the modules that use them so that ``qtopt --help`` builds its parser without
importing torch, rclpy or pybullet. qtopt_policy is the package every other one depends on,
hence their home here."""

from __future__ import annotations

# Q-network presets (qtopt_policy.qnetwork.PRESETS; the learner's TRAINER_PRESETS the same).
PRESET_NAMES = ("paper", "sim", "sim96")
# Policies a cell runs itself, and those the policy node serves from a Q-network.
LOCAL_POLICIES = ("scripted", "scripted_noisy")
SERVED_POLICIES = ("greedy", "noisy")
# How a cell labels an episode: "detector", image subtraction after the drop test (what a real
# cell does, qtopt_collector.success_detection); "truth", a simulator's held-object check.
LABELS = ("detector", "truth")
# The simulated objects a cell draws from: KukaDiverseObjectEnv's split (train: 900, test: 100).
OBJECT_SPLITS = ("train", "test")
# What ends an episode (qtopt_collector.episode.EpisodeConfig.ending_by): the learned e bit,
# Algorithm 2, or the close itself.
TERMINATIONS = ("learned", "scripted", "close")
# The main job's rule (docs/decisions.md), and that of a model that records none: it predates
# the record, when the learned stop was the default.
DEFAULT_TERMINATION = "close"
UNRECORDED_TERMINATION = "learned"
# The learner's engines: threads in one process, or Ray actors (qtopt_learner.distributed).
ENGINES = ("inprocess", "ray")
# How a real cell drives the arm: ros2_control's joint trajectory controller, or MoveIt Servo.
ARM_BACKENDS = ("trajectory", "servo")

# Objects a simulated bin holds at most (bin emptying, Sec. 6.1: the paper's bin held 28).
MAX_BIN_OBJECTS = 30
# Episode seeds: the episodes of run seed k take seeds k * SEEDS_PER_RUN + 1, + 2, ... (a lost
# episode's rerun takes the next unused one), so runs with their own seeds never share an
# episode, and no goal carries seed 0, which asks a cell to draw a random one
# (qtopt_collector.episode_driver.first_episode_seed).
SEEDS_PER_RUN = 1_000_000
