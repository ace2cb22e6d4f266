"""train --init: transfer from a trained, pruned checkpoint (model.pt of an earlier run).

The checkpoint is scored before any fine-tuning (it must score what its own run reported),
its zeros stay zero with prune.init_masks = keep and may regrow with reopen, a checkpoint of
another shape or a missing file is a one-line error, and a digits model trained on classes
0-4 fine-tunes on classes 5-9."""

import json
import warnings

import pytest
import torch

from hwprune import api
from hwprune.config import Config, from_dict
from hwprune.errors import HwpruneError
from hwprune.train.loop import train
from hwprune.train.model import prunable
from tests.test_cli import assert_clean_error, hwprune


@pytest.fixture(autouse=True)
def _quiet_single_thread():
    """Brevitas warnings off; one torch thread (small models: threads only cost here)."""
    warnings.filterwarnings("ignore")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(hidden=(24, 16), classes=(), **prune) -> Config:
    """A small digits MLP, 2 dense epochs and 2 fine-tuning epochs, seeded."""
    doc = {
        "data": {"classes": list(classes)},
        "model": {"hidden": list(hidden)},
        "train": {"epochs": 2, "lr": 0.01, "seed": 0},
        "prune": {"sparsity": 0.75, "finetune_epochs": 2, **prune},
    }
    return from_dict(doc)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A build directory of api.train on tiny(): model.pt at 75 % (one-shot magnitude)."""
    warnings.filterwarnings("ignore")
    out = tmp_path_factory.mktemp("pretrained")
    api.train(tiny(), out, progress=False)
    return out


def zeros(model) -> dict[str, torch.Tensor]:
    return {n: m.weight.detach() == 0 for n, m in prunable(model).items()}


def test_init_reproduces_the_checkpoint_accuracy(pretrained, tmp_path):
    """Loaded into the folded model, the checkpoint scores exactly what its run reported;
    train.json records the path as given and that figure."""
    saved = json.loads((pretrained / "train.json").read_text())
    assert saved["init"] is None and saved["init_accuracy"] is None
    out = tmp_path / "b"
    init = pretrained / "model.pt"
    rep = api.train(tiny(), out, progress=False, init=init)
    doc = json.loads((out / "train.json").read_text())
    assert doc["init_accuracy"] == saved["pruned_accuracy"]
    assert doc["dense_accuracy"] == saved["pruned_accuracy"] == rep.dense_accuracy
    assert doc["init"] == str(init)
    assert doc["history"][0]["phase"] == "init"  # no dense QAT phase
    assert not any(h["phase"].startswith("train") for h in doc["history"])
    assert (out / "model.onnx").is_file()


def test_keep_holds_the_checkpoint_zeros(pretrained):
    """init_masks = keep: each of the checkpoint's zeros is still zero after fine-tuning,
    also under a lower target (50 %) and with dns, which splices weights back."""
    init = pretrained / "model.pt"
    before = zeros(api.load_trained(tiny(), pretrained))
    for prune in ({"sparsity": 0.5}, {"method": "dns", "end_step": 20, "frequency": 5}):
        res = train(tiny(**prune), progress=False, init=init)
        after = zeros(res.model)
        for name, z in before.items():
            assert z.float().mean() == pytest.approx(0.75, abs=1e-3), name
            assert torch.all(after[name][z]), name
            assert torch.all(res.masks[name][z] == 0), name


def test_reopen_lets_the_checkpoint_zeros_regrow(pretrained):
    """init_masks = reopen with a 50 % target below the checkpoint's 75 %: the final masks
    are the criterion's at 50 % (exactly half of each layer) and keep weights that were zero;
    keep with the same target cannot go below 75 %."""
    init = pretrained / "model.pt"
    before = zeros(api.load_trained(tiny(), pretrained))
    reopen = train(tiny(sparsity=0.5, init_masks="reopen"), progress=False, init=init)
    keep = train(tiny(sparsity=0.5), progress=False, init=init)
    for name, z in before.items():
        n = z.numel()
        assert reopen.sparsity[name] == round(0.5 * n) / n, name
        assert keep.sparsity[name] >= float(z.float().mean()), name
        regrown = z & (reopen.masks[name] == 1)
        assert regrown.any(), name
        assert (reopen.model.state_dict()[f"{name}.weight"][regrown] != 0).any(), name


def test_shape_mismatch_is_one_line_naming_the_parameter(pretrained):
    init = pretrained / "model.pt"
    with pytest.raises(HwpruneError) as e:
        train(tiny(hidden=(32, 16)), progress=False, init=init)
    msg = str(e.value)
    assert "\n" not in msg
    for word in (str(init), "'linear0.weight'", "(24, 64)", "(32, 64)", "use a config"):
        assert word in msg, msg


def test_missing_or_bad_file_is_one_line(tmp_path):
    with pytest.raises(HwpruneError, match=r"^--init .*nope\.pt: no such file; give"):
        train(tiny(), progress=False, init=tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_text("hello\n")
    with pytest.raises(HwpruneError, match=r"bad\.pt: not a PyTorch state dict") as e:
        train(tiny(), progress=False, init=bad)
    assert "\n" not in str(e.value)
    with pytest.raises(HwpruneError, match="not both"):
        train(tiny(), progress=False, init=bad, dense=object())


def test_errors_come_before_anything_is_written(pretrained, tmp_path):
    config = tmp_path / "wide.toml"
    config.write_text(tiny(hidden=(32, 16)).to_toml())
    out = tmp_path / "out"
    r = hwprune("train", config, "-o", out, "--init", tmp_path / "missing.pt")
    assert_clean_error(r, "missing.pt", "no such file")
    assert not out.exists()
    # the shape check also runs before any step starts (in-process: a second CLI start
    # would cost another 10 s of imports)
    with pytest.raises(HwpruneError, match="'linear0.weight' has shape"):
        api.train(config, out, progress=False, init=pretrained / "model.pt")
    assert not out.exists()


def test_transfer_across_class_subsets(tmp_path):
    """Pretrained on digits 0-4, fine-tuned 5 epochs on 5-9 (both relabelled 0..4): it runs,
    and the fine-tuned model is well above chance (20 %) and above the checkpoint, whose
    outputs mean other digits (seed 0: 7.1 % before, 57.6 % after)."""
    a = tmp_path / "a"
    api.train(tiny(classes=(0, 1, 2, 3, 4)), a, progress=False)
    res = train(
        tiny(classes=(5, 6, 7, 8, 9), finetune_epochs=5), progress=False, init=a / "model.pt"
    )
    assert res.split.n_classes == 5 and set(res.split.y_test) == set(range(5))
    assert 0.0 <= res.init_accuracy == res.dense_accuracy
    assert res.pruned_accuracy > 0.4 and res.pruned_accuracy > res.init_accuracy


def test_lottery_ticket_and_layer_targets_from_a_checkpoint(pretrained):
    """lottery-ticket rewinds to the checkpoint and keeps its zeros; per-layer targets hold
    with reopen (a layer at 0 gets every weight back, another its own target exactly)."""
    init = pretrained / "model.pt"
    before = zeros(api.load_trained(tiny(), pretrained))
    res = train(tiny(method="lottery-ticket"), progress=False, init=init)
    for name, z in before.items():
        assert torch.all(zeros(res.model)[name][z]), name
    cfg = tiny(init_masks="reopen", layer_sparsity={"linear0": 0.9, "linear2": 0.0})
    res = train(cfg, progress=False, init=init)
    assert res.sparsity == {"linear0": round(0.9 * 1536) / 1536, "linear1": 0.75, "linear2": 0.0}


def test_the_readme_transfer_example_configs_load():
    """examples/transfer/: the same model and pruning, classes 0-4 and 5-9."""
    from dataclasses import replace

    from hwprune.config import load_config
    from hwprune.resources import data_dir

    src = load_config(data_dir("examples") / "transfer" / "digits_0to4.toml")
    dst = load_config(data_dir("examples") / "transfer" / "digits_5to9.toml")
    assert (src.data.classes, dst.data.classes) == ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))
    assert replace(dst, data=src.data) == src
