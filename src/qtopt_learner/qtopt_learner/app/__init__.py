"""The application layer: what a user runs (the main job, ``qtopt`` and its commands, budgets,
ablations, the run folder and its record, the report) on top of the learner core, the
collector and the policy. It may import rclpy, pybullet and matplotlib; the core does not."""
