"""Every bundled example config runs the whole job: train (its quantizers, layers, pruning
criterion, schedule, method, teacher), export, compile, and every ladder level bit-exact.

Training is shortened (a few epochs, fewer steps, fewer vectors) so the set fits in CI; the
shortening changes how accurate the network is, never what the hardware must compute, so
exactness is tested in full. The accuracy of the real settings is measured in
benchmarks/pruning.py.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import pytest

from hwprune.config import load_config
from hwprune.resources import data_dir

# Examples whose whole job takes minutes even shortened (a 28x28 CNN: the unrolled HLS
# project's C-simulation build and the RTL simulation of its pixel stream), and, to keep CI
# under 20 minutes, examples whose parts other tests cover (another pruning criterion,
# method or dataset on an MLP: tests/prune and tests/train cover each; lottery-ticket
# rewinding: tests/train/test_loop.py; ternary and 1-bit layers: tests/train/test_model.py;
# Conv1d: tests/frontend/qonnx/test_layers.py and the stream tests); run with -m slow.
SLOW = {
    "fashion_cnn.toml",
    "digits_mrmr.toml",
    "digits_dns.toml",
    "fashion_mlp.toml",
    "digits_lottery.toml",
    "digits_ternary.toml",
    "digits_conv1d.toml",
}
# sweep_*.toml are sweep files, run by tests/sweep.
EXAMPLES = sorted(
    p.name for p in data_dir("examples").glob("*.toml") if not p.name.startswith("sweep_")
)
CASES = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in EXAMPLES]


def shortened(cfg):
    """The same job with little training: at most 3 epochs each phase, masks changing within
    the first 20 steps, 2,000 training images, 200 simulation vectors."""
    p = cfg.prune
    return replace(
        cfg,
        data=replace(cfg.data, train_samples=2000 if cfg.data.dataset != "digits" else 0),
        train=replace(cfg.train, epochs=min(cfg.train.epochs, 3)),
        prune=replace(
            p,
            finetune_epochs=min(p.finetune_epochs, 3),
            iterations=min(p.iterations, 2),
            begin_step=0,
            end_step=20,
            frequency=min(p.frequency, 5),
            rewind_epoch=min(p.rewind_epoch, 1),
        ),
        sim=replace(cfg.sim, vectors=200),
    )


@pytest.mark.parametrize("name", CASES)
def test_example_runs_bit_exact(name, tmp_path):
    from hwprune import api

    warnings.filterwarnings("ignore")
    cfg = shortened(load_config(data_dir("examples") / name))
    out = tmp_path / "build"
    report = api.run(cfg, out, progress=False)
    names = [lv.name for lv in report.sim.levels]
    assert names[:3] == ["brevitas", "qonnx", "csim"] and names[3].startswith("rtl")
    assert all(lv.passed and lv.skipped is None for lv in report.sim.levels)
    # the zero-term invariant on every weight layer of every example
    for ly in json.loads((out / "rtl" / "manifest.json").read_text())["layers"]:
        if ly.get("form") == "stream":  # one kernel per layer: its terms
            assert ly["product_terms_verilog"] == ly["product_terms_hls"] == ly["stream_terms"]
        else:
            assert ly["product_terms_verilog"] == ly["product_terms_hls"] == ly["nonzero_weights"]
    train = json.loads((out / "train.json").read_text())
    assert train["criterion"] == cfg.prune.criterion and train["schedule"] == cfg.prune.schedule


def _uncovered() -> list[tuple[str, str]]:
    """(prune/distill key, name) of every criterion, schedule, method and teacher that no
    example uses: each must still run the whole ladder, on the default job."""
    from hwprune.config import PRUNE_CRITERIA, PRUNE_METHODS, PRUNE_SCHEDULES, TEACHERS

    cfgs = [load_config(data_dir("examples") / n) for n in EXAMPLES]
    used = {
        "criterion": {c.prune.criterion for c in cfgs},
        "schedule": {c.prune.schedule for c in cfgs},
        "method": {c.prune.method for c in cfgs},
        "teacher": {c.distill.teacher for c in cfgs},
    }
    names = {
        "criterion": PRUNE_CRITERIA,
        "schedule": PRUNE_SCHEDULES,
        "method": PRUNE_METHODS,
        "teacher": TEACHERS,
    }
    return [(k, n) for k, all_names in names.items() for n in all_names if n not in used[k]]


@pytest.mark.parametrize("key, name", _uncovered())
def test_registry_name_without_example_runs_bit_exact(key, name, tmp_path):
    from hwprune import api

    warnings.filterwarnings("ignore")
    cfg = shortened(load_config(data_dir("examples") / "digits.toml"))
    if key == "teacher":
        cfg = replace(cfg, distill=replace(cfg.distill, teacher=name))
    else:
        cfg = replace(cfg, prune=replace(cfg.prune, **{key: name}))
    report = api.run(cfg, tmp_path / "build", progress=False)
    assert all(lv.passed and lv.skipped is None for lv in report.sim.levels)
    assert report.train.sparsity  # the pruned layers' mask sparsity is reported
