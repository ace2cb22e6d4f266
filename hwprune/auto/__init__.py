"""Pruning that decides for itself: per-layer sensitivity, per-layer sparsity allocated under a
board's budget by a search (greedy, or an AMC-style reinforcement-learning agent)."""
