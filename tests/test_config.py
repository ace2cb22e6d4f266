"""Bad configs fail before any work, naming the key and the allowed values."""

import pytest

from hwprune.config import PRUNE_METHODS, Config, from_dict, load_config
from hwprune.errors import HwpruneError
from hwprune.resources import data_dir


def test_bundled_example_is_the_default_config():
    assert load_config(data_dir("examples") / "digits.toml") == Config()


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"prune": {"method": "lottery"}}, ["prune.method", "magnitude"]),
        ({"prune": {"sparsity": 1.0}}, ["prune.sparsity", "[0, 1)"]),
        ({"prune": {"sparsity": -0.1}}, ["prune.sparsity"]),
        ({"model": {"weight_bits": 0}}, ["model.weight_bits", "[2, 16]"]),
        ({"model": {"hidden": [64, "x"]}}, ["model.hidden", "list of integers"]),
        ({"model": {"layers": 3}}, ["unknown key model.layers", "hidden"]),
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
    from hwprune.prune.magnitude import CRITERIA

    assert set(PRUNE_METHODS) == set(CRITERIA)
