"""Registers the sim cell as the Gymnasium environment ``qtopt/KukaGrasp-v0``.

Importing this module loads neither PyBullet nor torch: the environment
(:class:`qtopt_collector.grasp_env.GraspEnv`) is imported when first made.
``gymnasium.make("qtopt_collector.gym_env:qtopt/KukaGrasp-v0")`` imports it by itself
(Gymnasium 1.x loads no plugins from package entry points).
"""

import gymnasium

ENV_ID = "qtopt/KukaGrasp-v0"

if ENV_ID not in gymnasium.registry:  # a second registration would only warn
    gymnasium.register(ENV_ID, entry_point="qtopt_collector.grasp_env:GraspEnv")
