"""QT-Opt learner: replay, Bellman updaters, training and joint fine-tuning."""
