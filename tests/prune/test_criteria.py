"""Pruning criteria on hand-worked weights: which weights, rows and columns go."""

import numpy as np
import pytest
import torch

from hwprune.config import PRUNE_CRITERIA
from hwprune.prune.criteria import CRITERIA, MaskContext, mrmr_keep


def ctx(seed: int = 0, output: str = "out", activations=None) -> MaskContext:
    return MaskContext(output, torch.Generator().manual_seed(seed), activations)


# Row norms: L1 (2.0, 3.2, 5.5), L2 (2.0, 1.6, 3.35): L1 and L2 disagree on the weakest row.
# Column norms: L1 (5.8, 1.8, 1.8, 1.3), L2 (3.69, 1.28, 1.28, 0.94): columns 1 and 2 tie.
W = torch.tensor(
    [
        [2.0, 0.0, 0.0, 0.0],
        [0.8, -0.8, 0.8, -0.8],
        [3.0, 1.0, -1.0, 0.5],
    ]
)


def test_names_match_config():
    assert tuple(CRITERIA) == PRUNE_CRITERIA


@pytest.mark.parametrize("name, row", [("l1-neuron", 0), ("l2-neuron", 1)])
def test_neuron_criteria_remove_the_weakest_row(name, row):
    m = CRITERIA[name]({"h": W}, 1 / 3, ctx())["h"]
    want = torch.ones_like(W)
    want[row] = 0
    assert torch.equal(m, want)


@pytest.mark.parametrize("name", ["l1-channel", "l2-channel"])
def test_channel_criteria_remove_columns_ties_to_lower_index(name):
    m = CRITERIA[name]({"h": W}, 0.5, ctx())["h"]
    want = torch.ones_like(W)
    want[:, 3] = 0  # weakest column
    want[:, 1] = 0  # ties with column 2; the lower index goes
    assert torch.equal(m, want)


def test_neuron_criteria_keep_every_output_unit_and_channels_do_not():
    w = {"h": W, "out": W.clone()}
    assert torch.equal(CRITERIA["l1-neuron"](w, 0.5, ctx())["out"], torch.ones_like(W))
    assert int((CRITERIA["l1-channel"](w, 0.5, ctx())["out"] == 0).sum()) == 2 * 3


def test_structured_criteria_leave_at_least_one_unit():
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    m = CRITERIA["l2-neuron"]({"h": w}, 0.8, ctx())["h"]  # round(0.8 * 2) = 2, capped at 1
    assert torch.equal(m, torch.tensor([[0.0, 0.0], [1.0, 1.0]]))


def test_conv_filters_and_input_channels():
    w = torch.ones(4, 3, 2, 2)
    w[2] *= 0.1  # weakest filter
    w[:, 1] *= 0.01  # weakest input channel
    neuron = CRITERIA["l1-neuron"]({"c": w}, 0.25, ctx())["c"]
    assert neuron[2].sum() == 0 and neuron.sum() == 3 * 12
    chan = CRITERIA["l2-channel"]({"c": w}, 0.34, ctx())["c"]
    assert chan[:, 1].sum() == 0 and chan.sum() == 4 * 2 * 4


def test_magnitude_per_layer_and_global_differ():
    a = torch.tensor([[0.1, -0.2], [0.3, 0.4]])
    b = torch.tensor([[1.0, 2.0], [-3.0, 4.0]])
    per = CRITERIA["magnitude"]({"a": a, "b": b}, 0.5, ctx())
    assert torch.equal(per["a"], torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert torch.equal(per["b"], torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    glob = CRITERIA["global-magnitude"]({"a": a, "b": b}, 0.5, ctx())
    assert torch.equal(glob["a"], torch.zeros(2, 2))
    assert torch.equal(glob["b"], torch.ones(2, 2))


def test_magnitude_ties_go_to_the_lower_index():
    m = CRITERIA["magnitude"]({"a": torch.tensor([1.0, -1.0, 1.0, 2.0])}, 0.5, ctx())["a"]
    assert torch.equal(m, torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_random_is_seeded_exact_and_keeps_zeros_pruned():
    w = torch.arange(1.0, 101.0).view(10, 10)
    w[0, :5] = 0
    a = CRITERIA["random"]({"w": w}, 0.3, ctx(7))["w"]
    assert torch.equal(a, CRITERIA["random"]({"w": w}, 0.3, ctx(7))["w"])
    assert not torch.equal(a, CRITERIA["random"]({"w": w}, 0.3, ctx(8))["w"])
    assert int((a == 0).sum()) == 30
    assert a[0, :5].sum() == 0  # already-zero weights count among the pruned
    assert int((a[1:] == 0).sum()) >= 20  # the rest spread over the whole layer


def test_sparsity_zero_keeps_everything():
    for name, fn in CRITERIA.items():
        m = fn({"h": W, "out": W}, 0.0, ctx(activations=lambda n: ({}, None)))
        assert all(torch.equal(v, torch.ones_like(W)) for v in m.values()), name


def _synthetic(n=400, seed=0):
    """Units: 0 = label parity, 1 = label high bit, 2 = a copy of unit 1, 3 = noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    u0 = (y % 2) + 0.1 * rng.standard_normal(n)
    u1 = (y // 2) + 0.1 * rng.standard_normal(n)
    u3 = rng.standard_normal(n)
    return np.stack([u0, u1, u1, u3], axis=1), y


def test_mrmr_keeps_one_duplicate_and_the_informative_unit():
    acts, y = _synthetic()
    kept = mrmr_keep(acts, y, 2, seed=0)
    assert 0 in kept and len({1, 2} & set(kept.tolist())) == 1
    assert 3 not in kept


def test_mrmr_criterion_prunes_rows_of_hidden_layers_only():
    acts, y = _synthetic()
    asked = []

    def activations(names):
        asked.append(names)
        return {"h": acts}, y

    w = {"h": torch.ones(4, 3), "out": torch.ones(2, 4)}
    m = CRITERIA["mrmr"](w, 0.5, ctx(activations=activations, output="out"))
    assert asked == [("h",)]
    assert torch.equal(m["out"], torch.ones(2, 4))
    rows = m["h"].sum(1)
    assert rows[0] == 3 and rows[3] == 0 and rows[1] + rows[2] == 3


def test_mrmr_treats_a_dead_unit_as_redundant():
    acts, y = _synthetic()
    acts[:, 1] = 0.0  # a dead ReLU: constant activation
    kept = mrmr_keep(acts[:, :2], y, 1, seed=0)
    assert kept.tolist() == [0]
