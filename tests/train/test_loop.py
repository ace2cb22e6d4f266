"""Training methods, schedules and teachers on small digits configs: masks hold, the guard
rolls back, DNS splices, the exported QONNX has the zeros the masks demand, and the
acceptance figure (AGP and lottery-ticket at 90 % within 2 points of dense QAT)."""

import warnings

import numpy as np
import pytest
import torch

from hwprune.config import PRUNE_CRITERIA, PRUNE_METHODS, TEACHERS, Config, from_dict
from hwprune.errors import HwpruneError
from hwprune.train.loop import METHODS, accuracy, train
from hwprune.train.loop import TEACHERS as TEACHER_TABLE
from hwprune.train.model import prunable
from tests.qonnx_ref import quantized_weight_nonzeros


@pytest.fixture(autouse=True)
def _quiet_single_thread():
    """Brevitas warnings off; one torch thread: on the shared 2-core machine, intra-op threads
    made these small models 10-15x slower (measured 11 s vs 0.7 s for a tiny run)."""
    warnings.filterwarnings("ignore")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**prune) -> Config:
    """A small digits MLP (64-24-16-10), 2 dense epochs, seeded: about a second per phase."""
    doc = {
        "model": {"hidden": [24, 16]},
        "train": {"epochs": 2, "lr": 0.01, "seed": 0},
        "prune": {"sparsity": 0.75, "finetune_epochs": 2, **prune},
    }
    return from_dict(doc)


def assert_masks_hold(res) -> None:
    """Every weight the final masks zero is exactly zero in the returned (folded) model."""
    layers = prunable(res.model)
    for name, mask in res.masks.items():
        w = layers[name].weight.detach()
        assert torch.all(w[mask == 0] == 0), name
        assert res.sparsity[name] == pytest.approx(float((mask == 0).float().mean()))


def test_names_match_config():
    assert tuple(METHODS) == PRUNE_METHODS
    assert tuple(TEACHER_TABLE) == TEACHERS


@pytest.mark.parametrize(
    "prune",
    [
        {"method": "standard", "schedule": "one-shot"},
        {"method": "standard", "schedule": "constant", "end_step": 20, "frequency": 5},
        {"method": "lottery-ticket", "schedule": "one-shot", "rewind_epoch": 1},
        {"method": "lottery-ticket", "schedule": "iterative", "iterations": 2, "tolerance": 0.9},
    ],
)
def test_method_runs_and_masks_hold(prune):
    res = train(tiny(**prune), progress=False)
    assert_masks_hold(res)
    for name in res.masks:
        assert res.sparsity[name] == pytest.approx(0.75, abs=1e-3)
    assert res.pruned_accuracy > 0.5 and res.dense_accuracy > 0.5
    assert res.seconds > 0 and res.history[0]["phase"] == "train (dense QAT)"


def test_dns_splices_pruned_weights_back():
    # A fixed target (one-shot), as in Guo et al.: under AGP's rising target the pruned
    # weights rarely climb back past the moving upper threshold. Masked weights move by their
    # plain gradient (the paper's rule), so splicing needs some steps: 10 epochs (180 steps;
    # 2 epochs splice none, 10 splice about 20 weights here).
    cfg = tiny(
        method="dns",
        schedule="one-shot",
        finetune_epochs=10,
        begin_step=0,
        end_step=171,
        frequency=3,
    )
    res = train(cfg, progress=False)
    updates = [h for h in res.history if h.get("event") == "mask"]
    assert len(updates) == 58  # steps 0, 3, ..., 171
    assert sum(h["spliced"] for h in updates) > 0  # weights masked earlier came back
    assert updates[-1]["sparsity"] == pytest.approx(0.75, abs=1e-3)  # exact at end_step
    assert_masks_hold(res)


def test_iterative_guard_rolls_back_and_stops():
    # Tolerance 0: the first round whose validation accuracy falls below the dense model's
    # is undone; 97 % in two 1-epoch rounds cannot hold on to it.
    cfg = tiny(schedule="iterative", sparsity=0.97, iterations=2, tolerance=0.0)
    res = train(cfg, progress=False)
    guards = [h for h in res.history if h.get("event") == "guard"]
    assert guards[-1]["passed"] is False and guards[-1]["rolled_back"] is True
    rounds_kept = len(guards) - 1
    for name, s in res.sparsity.items():
        n = res.masks[name].numel()
        assert s * n == round(0.97 * rounds_kept / 2 * n)
    # the returned model is the state the previous guard accepted (or the dense model)
    dense_val = [h for h in res.history if h["phase"] == "train (dense QAT)"][-1]["val_accuracy"]
    want = guards[-2]["val_accuracy"] if rounds_kept else dense_val
    assert accuracy(res.model, res.split.x_val, res.split.y_val) == pytest.approx(want)
    assert_masks_hold(res)


@pytest.mark.parametrize("teacher", ["dense", "larger"])
def test_distillation_teachers(teacher):
    doc = {
        "model": {"hidden": [24, 16]},
        "train": {"epochs": 2, "seed": 0},
        "prune": {"sparsity": 0.5, "finetune_epochs": 2},
        "distill": {"teacher": teacher, "temperature": 2.0, "alpha": 0.7},
    }
    res = train(from_dict(doc), progress=False)
    phases = {h["phase"] for h in res.history}
    assert ("teacher (float, wider)" in phases) == (teacher == "larger")
    assert res.pruned_accuracy > 0.5
    assert_masks_hold(res)


def test_distillation_loss_matches_hand_computation():
    from hwprune.train.loop import _loss

    cfg = from_dict({"distill": {"teacher": "dense", "temperature": 2.0, "alpha": 0.25}})
    s = torch.tensor([[1.0, 0.0, -1.0]])
    t = torch.tensor([[0.0, 2.0, 0.0]])
    y = torch.tensor([1])

    def softmax(v):
        e = np.exp(v - v.max())
        return e / e.sum()

    ps, pt = softmax(s.numpy()[0] / 2), softmax(t.numpy()[0] / 2)
    kl = float(np.sum(pt * np.log(pt / ps)))
    ce = -float(np.log(softmax(s.numpy()[0])[1]))
    want = 0.25 * 4 * kl + 0.75 * ce
    assert float(_loss(s, y, t, cfg)) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("criterion", PRUNE_CRITERIA)
def test_exported_qonnx_has_the_zeros_the_masks_demand(criterion, tmp_path):
    from hwprune.export.qonnx import export_model

    # A BatchNorm after the first layer: folding must keep the pruned zeros.
    doc = {
        "model": {
            "layers": [
                {"kind": "linear", "out": 24},
                {"kind": "batchnorm"},
                {"kind": "relu"},
                {"kind": "linear", "out": 16, "weight_bits": 4},
                {"kind": "relu"},
                {"kind": "linear", "out": 0},
            ]
        },
        "train": {"epochs": 1, "seed": 0},
        "prune": {"criterion": criterion, "sparsity": 0.5, "finetune_epochs": 1},
    }
    res = train(from_dict(doc), progress=False)
    assert_masks_hold(res)
    path = tmp_path / "m.onnx"
    export_model(res.model, res.split.x_train.shape[1], path)
    nonzeros = quantized_weight_nonzeros(path)
    demanded = [int(m.sum()) for m in res.masks.values()]
    assert len(nonzeros) == len(demanded)
    for got, allowed in zip(nonzeros, demanded):
        assert 0 < got <= allowed
    assert sum(m.numel() for m in res.masks.values()) - sum(demanded) > 0


def test_bad_settings_fail_before_training():
    with pytest.raises(HwpruneError, match=r"prune.end_step = 100000 .* optimizer steps"):
        train(tiny(schedule="agp", end_step=100_000), progress=False)
    with pytest.raises(HwpruneError, match=r"prune.end_step"):
        train(tiny(method="dns", end_step=100_000), progress=False)


def test_binary_layer_is_not_pruned_even_without_config_checks():
    from dataclasses import replace

    from hwprune.config import LayerConfig, ModelConfig

    layers = (
        LayerConfig("linear", out=16, weight_bits=1),
        LayerConfig("relu"),
        LayerConfig("linear", out=0),
    )
    cfg = tiny()
    cfg = replace(cfg, model=ModelConfig(layers=layers))  # skips from_dict's own check
    with pytest.raises(HwpruneError, match="'linear0' has 1-bit"):
        train(cfg, progress=False)


# --- acceptance: AGP and lottery-ticket at 90 % stay within 2 points of dense QAT ----------
# 64-128-64-10 MLP, 20 dense QAT epochs at lr 0.005 (digits test set: 450 images). Measured
# over train.seed 0, 1, 2 when tuned: AGP -0.67 / 0.00 / +0.44 points, lottery-ticket
# +0.22 / -0.67 / -0.44 points; 15-20 s each on one core.
ACCEPT = {"model": {"hidden": [128, 64]}, "train": {"epochs": 20, "lr": 0.005, "seed": 0}}


def _accept(prune: dict):
    res = train(from_dict({**ACCEPT, "prune": {"sparsity": 0.9, **prune}}), progress=False)
    total = sum(s * res.masks[n].numel() for n, s in res.sparsity.items())
    assert total / sum(m.numel() for m in res.masks.values()) == pytest.approx(0.9, abs=1e-3)
    assert res.pruned_accuracy >= res.dense_accuracy - 0.02, (
        res.dense_accuracy,
        res.pruned_accuracy,
    )
    assert_masks_hold(res)
    return res


def test_agp_at_90_percent_stays_within_2_points_of_dense():
    # AGP ramp over the first 200 of 450 fine-tuning steps (11 of 25 epochs), every 10 steps.
    _accept(
        {
            "schedule": "agp",
            "finetune_epochs": 25,
            "begin_step": 0,
            "end_step": 200,
            "frequency": 10,
        }
    )


# Depends on the CPU's float kernels: it passes on the Intel Xeon (AVX-512) the last CI ran
# on; on an AMD EPYC (AVX2, torch 2.13.0+cpu) seed 0's third round validates at 93.6 %, the
# guard rolls it back and the sparsity stays at 78.5 % (the test accuracy, 96.7 %, is within
# 2 points). Out of the CI subset until it holds on both (issue 14's note).
@pytest.mark.slow
def test_lottery_ticket_at_90_percent_stays_within_2_points_of_dense():
    # 3 rounds (53.6 %, 78.5 %, 90 %) rewound to epoch 1, 15 epochs each; the guard is on.
    res = _accept(
        {
            "method": "lottery-ticket",
            "schedule": "iterative",
            "iterations": 3,
            "finetune_epochs": 15,
            "rewind_epoch": 1,
        }
    )
    assert [h["passed"] for h in res.history if h.get("event") == "guard"] == [True] * 3


@pytest.mark.parametrize(
    "prune",
    [
        {"method": "lottery-ticket", "schedule": "iterative", "iterations": 2, "tolerance": 0.9},
        {"criterion": "mrmr", "schedule": "agp", "end_step": 20, "frequency": 5},
    ],
)
def test_shared_dense_start_gives_the_same_run(prune):
    """A sweep trains the dense model once (train_dense) and starts every pruning run from it;
    that must change nothing: same masks, weights and accuracies as a run from scratch."""
    from hwprune.train.loop import train_dense

    cfg = tiny(**prune)
    alone = train(cfg, progress=False)
    shared = train(cfg, progress=False, dense=train_dense(cfg, progress=False))
    assert alone.dense_accuracy == shared.dense_accuracy
    assert alone.pruned_accuracy == shared.pruned_accuracy
    for name, mask in alone.masks.items():
        assert torch.equal(mask, shared.masks[name]), name
    for (n, a), (_, b) in zip(alone.model.state_dict().items(), shared.model.state_dict().items()):
        assert torch.equal(a, b), n


@pytest.mark.parametrize(
    "prune",
    [
        {"schedule": "one-shot"},
        {"schedule": "agp", "end_step": 20, "frequency": 5},
        {"method": "dns", "end_step": 20, "frequency": 5},
        {"method": "lottery-ticket", "schedule": "one-shot"},
    ],
    ids=["one-shot", "agp", "dns", "lottery-ticket"],
)
def test_layer_sparsity_gives_each_layer_its_own_target(prune):
    """prune.layer_sparsity: a named layer reaches its own target exactly (magnitude:
    round(s * n) zeros), the others prune.sparsity; a layer at 0 keeps every weight."""
    res = train(tiny(**prune, layer_sparsity={"linear0": 0.9, "linear2": 0.0}), progress=False)
    assert_masks_hold(res)
    sizes = {"linear0": 64 * 24, "linear1": 24 * 16, "linear2": 16 * 10}
    want = {"linear0": 0.9, "linear1": 0.75, "linear2": 0.0}
    for name, n in sizes.items():
        assert res.sparsity[name] == round(want[name] * n) / n, name


def test_layer_sparsity_of_a_neuron_criterion_counts_units():
    """l1-neuron with per-layer targets: round(s * units) rows per layer, the output kept."""
    res = train(tiny(criterion="l1-neuron", layer_sparsity={"linear0": 0.5}), progress=False)
    assert res.sparsity["linear0"] == 12 / 24
    assert res.sparsity["linear1"] == round(0.75 * 16) / 16
    assert res.sparsity["linear2"] == 0.0
