"""Analytical, sparsity-aware resource and latency estimates (no torch, no hls4ml).

``estimate(g, board)`` sizes a graph against one catalogue board, ``estimate_boards`` against
several, ``format_table`` prints the result. Cost formulas and their sources live next to
each op's cost function in ``hwprune.estimate.costs``.
"""

from hwprune.estimate.costs import COST_FUNCTIONS, LayerCost
from hwprune.estimate.report import estimate, estimate_boards, format_table, layer_costs

__all__ = [
    "COST_FUNCTIONS",
    "LayerCost",
    "estimate",
    "estimate_boards",
    "format_table",
    "layer_costs",
]
