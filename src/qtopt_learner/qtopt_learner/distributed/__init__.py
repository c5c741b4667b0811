"""QT-Opt's distributed system (Kalashnikov et al. 2018, Sec. 4.3, Fig. 3, App. F): the
plumbing around the algorithm of Sec. 4, which stays at the package's top level
(``qtopt_learner.targets``, ``losses``, ``trainer``, ``augmentation``).

- ``roles``: the narrow typed roles the workers share (a replay service, the label ring, a
  variable source for target and policy weights, a status board, a stop signal), their stats.
- ``replay`` (App. E.5) and ``train_ring`` (App. F.4): the named FIFO episode buffers and the
  ring of labeled samples; ``hub``: :class:`~.hub.LocalHub`, one object playing every role.
- The workers: ``log_replay`` (App. F.2), ``bellman_updater`` (App. F.4) and
  ``training_loop`` (Sec. 4.3) with its ``hooks``: logging, checkpoints (``checkpoint``) and
  TorchScript exports for the policies (App. F.1); ``fine_tuning``: App. F.3's ramp and balancer.
- The engines: ``engine`` (threads in one process) and ``ray_engine`` (Ray actors) run the same
  workers at either scale.
"""
