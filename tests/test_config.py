"""Bad configs fail before any work, naming the key and the allowed values."""

import re

import pytest

from hwprune.config import (
    PRUNE_CRITERIA,
    PRUNE_METHODS,
    PRUNE_SCHEDULES,
    TEACHERS,
    Config,
    from_dict,
    load_config,
)
from hwprune.errors import HwpruneError
from hwprune.resources import data_dir


def test_input_type_key_is_read():
    cfg = from_dict({"compile": {"input_type": "fixed<16,6,RND,SAT>"}}, "t.toml")
    assert cfg.compile.input_type == "fixed<16,6,RND,SAT>"


def test_bundled_example_is_the_default_config():
    assert load_config(data_dir("examples") / "digits.toml") == Config()


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"prune": {"method": "lottery"}}, ["prune.method", "lottery-ticket", "dns"]),
        ({"prune": {"criterion": "taylor"}}, ["prune.criterion", "mrmr", "l1-neuron"]),
        ({"prune": {"schedule": "cosine"}}, ["prune.schedule", "agp", "one-shot"]),
        ({"prune": {"sparsity": 1.0}}, ["prune.sparsity", "[0, 1)"]),
        ({"prune": {"sparsity": -0.1}}, ["prune.sparsity"]),
        ({"prune": {"layers": ["linear9"]}}, ["prune.layers", "linear9", "linear0, linear1"]),
        ({"prune": {"layers": "linear0"}}, ["prune.layers", "list of strings"]),
        (
            {"prune": {"method": "lottery-ticket", "schedule": "agp"}},
            ["prune.method = lottery-ticket", "prune.schedule"],
        ),
        ({"prune": {"schedule": "agp", "end_step": 0}}, ["prune.end_step", "prune.begin_step"]),
        ({"distill": {"teacher": "huge"}}, ["distill.teacher", "dense", "larger"]),
        ({"compile": {"input_type": "fixd<16,6>"}}, ["compile.input_type", "fixed<16,6>"]),
        ({"compile": {"input_type": 16}}, ["compile.input_type", "str"]),
        ({"compile": {"board": "nosuch"}}, ["compile.board", "nosuch", "pynq-z2", "zcu104"]),
        ({"compile": {"kernel": "dsp"}}, ["compile.kernel", "dsp", "mac"]),
        ({"compile": {"asic": "asic:osu19"}}, ["compile.asic", "asic:osu018"]),
        ({"compile": {"asic": "osu018"}}, ["compile.asic", "asic:osu018"]),
        ({"sim": {"seed": -1}}, ["sim.seed", "non-negative"]),
        ({"sim": {"vectors": 2_000_000}}, ["sim.vectors", "1,000,000"]),
        ({"model": {"weight_bits": 0}}, ["model.weight_bits", "[1, 8]"]),
        ({"model": {"act_bits": 9}}, ["model.act_bits", "[1, 8]"]),
        ({"model": {"weight_bits": 1}}, ["linear0", "1-bit (bipolar)", "weight_bits = 2"]),
        ({"model": {"hidden": [64, "x"]}}, ["model.hidden", "list of integers"]),
        ({"model": {"layers": 3}}, ["model.layers", "[[model.layers]]"]),
        ({"model": {"layers": [{"out": 3}]}}, ["model.layers[0] has no kind", "conv2d"]),
        ({"model": {"layers": [{"kind": "lstm"}]}}, ["model.layers[0].kind", "conv1d", "maxpool"]),
        (
            {"model": {"layers": [{"kind": "relu", "kernel": 3}, {"kind": "linear"}]}},
            ["model.layers[0].kernel", "relu", "bits, rounding"],
        ),
        ({"model": {"layers": [{"kind": "linear", "bits": 0}]}}, ["bits", "kind, name, out"]),
        ({"model": {"layers": [{"kind": "conv2d", "weight_bits": 0}]}}, ["weight_bits", "[1, 8]"]),
        (
            {"model": {"layers": [{"kind": "linear"}, {"kind": "linear"}]}},
            ["'linear0'", "out > 0"],
        ),
        ({"model": {"layers": [{"kind": "linear", "out": 4}, {"kind": "relu"}]}}, ["last layer"]),
        (
            {
                "model": {
                    "layers": [
                        {"kind": "linear", "name": "a", "out": 3},
                        {"kind": "linear", "name": "a"},
                    ]
                }
            },
            ["'a'", "twice"],
        ),
        ({"model": {"module": "nocolon"}}, ["model.module", "file.py:function"]),
        ({"modle": {}}, ["unknown section [modle]", "model"]),
        ({"train": {"epochs": "ten"}}, ["train.epochs", "int"]),
        ({"sim": {"simulator": "xsim"}}, ["sim.simulator", "icarus"]),
    ],
)
def test_bad_config_names_key_and_allowed(doc, words):
    with pytest.raises(HwpruneError) as e:
        from_dict(doc, "cfg.toml")
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_resolved_config_round_trips(tmp_path):
    cfg = from_dict({"model": {"hidden": [10, 5]}, "prune": {"sparsity": 0.5}})
    p = tmp_path / "c.toml"
    p.write_text(cfg.to_toml())
    assert load_config(p) == cfg


def test_not_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[model\nhidden = ")
    with pytest.raises(HwpruneError, match="not valid TOML"):
        load_config(p)


def test_allowed_names_match_the_registries():
    from hwprune.prune.criteria import CRITERIA
    from hwprune.prune.schedules import SCHEDULES
    from hwprune.train.loop import METHODS
    from hwprune.train.loop import TEACHERS as LOOP_TEACHERS

    assert list(PRUNE_CRITERIA) == list(CRITERIA)
    assert list(PRUNE_SCHEDULES) == list(SCHEDULES)
    assert list(PRUNE_METHODS) == list(METHODS)
    assert list(TEACHERS) == list(LOOP_TEACHERS)


def test_dataset_and_simulator_names_match_their_tables():
    from hwprune.names import DATASETS, SIMULATORS
    from hwprune.sim.rtl import _INSTALL
    from hwprune.train.data import DATASETS as LOADERS

    assert tuple(LOADERS) == DATASETS
    assert tuple(_INSTALL) == SIMULATORS


def test_layer_list_round_trips_and_names_fill_in(tmp_path):
    doc = {
        "model": {
            "layers": [
                {"kind": "conv2d", "out": 4, "kernel": 3, "padding": 1, "weight_bits": 2},
                {"kind": "batchnorm"},
                {"kind": "relu", "bits": 3, "rounding": "half_even"},
                {"kind": "maxpool"},
                {"kind": "flatten"},
                {"kind": "linear", "name": "head"},
            ]
        },
        "prune": {"layers": ["conv2d0"], "schedule": "agp"},
    }
    cfg = from_dict(doc)
    names = [ly.name for ly in cfg.model.layer_list()]
    assert names == ["conv2d0", "batchnorm0", "relu0", "maxpool0", "flatten0", "head"]
    p = tmp_path / "c.toml"
    p.write_text(cfg.to_toml())
    assert load_config(p) == cfg


def test_every_example_config_is_valid():
    from hwprune.sweep.spec import load_sweep

    for p in sorted(data_dir("examples").glob("*.toml")):
        # sweep_*.toml are sweep files (hwprune sweep): a base config and axes, every point
        # of which must be a valid config
        load_sweep(p) if p.name.startswith("sweep_") else load_config(p)


def test_kernel_names_match_the_kernel_table():
    from hwprune.hw.kernels import KERNELS as TABLE
    from hwprune.names import KERNELS

    assert (*TABLE, "auto") == KERNELS


def test_layer_sparsity_round_trips_and_is_checked():
    """prune.layer_sparsity is an inline table of layer -> sparsity; it survives to_toml and
    is refused with one line when it names an unknown or unpruned layer, or a bad value."""
    import tomllib

    from hwprune.config import from_dict

    cfg = from_dict({"prune": {"layer_sparsity": {"linear0": 0.9, "linear2": 0}}})
    assert cfg.prune.layer_sparsity == (("linear0", 0.9), ("linear2", 0.0))
    assert cfg.prune.target("linear0") == 0.9 and cfg.prune.target("linear1") == 0.85
    assert from_dict(tomllib.loads(cfg.to_toml())) == cfg
    bad = [
        ({"layer_sparsity": {"dense9": 0.5}}, "prune.layer_sparsity names 'dense9'"),
        ({"layer_sparsity": {"linear0": 1.0}}, "prune.layer_sparsity.linear0 = 1.0"),
        ({"layer_sparsity": [0.5]}, "must be a table of layer name = sparsity"),
        ({"layers": ["linear1"], "layer_sparsity": {"linear0": 0.5}}, "prune.layers leaves out"),
        (
            {"criterion": "global-magnitude", "layer_sparsity": {"linear0": 0.5}},
            "global-magnitude chooses",
        ),
    ]
    for prune, text in bad:
        with pytest.raises(HwpruneError, match=re.escape(text)):
            from_dict({"prune": prune})
