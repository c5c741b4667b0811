"""QT-Opt learner: the algorithm of Sec. 4 at the top level (``targets``, ``losses``,
``trainer``, ``augmentation``), App. F's distributed system in ``distributed``, and around them
the learner's config, node, main job, evaluation and CLI."""
