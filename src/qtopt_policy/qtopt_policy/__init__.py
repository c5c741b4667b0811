"""QT-Opt MDP spec, Q-network, cross-entropy method, policies and the policy node."""
