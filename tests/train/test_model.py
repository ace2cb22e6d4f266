"""Models built from layer lists (and a Python module) export to QONNX bit-exactly: the Brevitas
forward equals qonnx's own execution of the cleaned QONNX file on inputs on the input grid.
BatchNorm folding keeps outputs and zeros; the float and wider variants have the same shape."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hwprune.config import LAYER_KEYS, LayerConfig, ModelConfig
from hwprune.errors import HwpruneError
from hwprune.export.qonnx import export_model
from hwprune.train.model import (
    LAYER_BUILDERS,
    Sign,
    build_model,
    fold_batchnorm,
    forward_numpy,
    prunable,
    unit_activations,
)

REPO = Path(__file__).resolve().parents[2]
L = LayerConfig

# name -> (model config, natural sample shape); together they cover every layer kind, weight
# bit class (binary, ternary, narrow int) and rounding, in few exports (each takes seconds).
CASES = {
    "mlp-shorthand-half-even": (
        ModelConfig(hidden=(12, 8), weight_bits=5, act_bits=4, act_rounding="half_even"),
        (1, 4, 4),
    ),
    "conv2d-bn-relu-maxpool-stride-avgpool": (
        ModelConfig(
            input_bits=6,
            layers=(
                L("conv2d", out=4, kernel=3, padding=1, weight_bits=4),
                L("batchnorm"),
                L("relu", bits=4),
                L("maxpool", kernel=2),
                L("conv2d", out=3, kernel=2, stride=2, weight_bits=3, bias=False),
                L("batchnorm"),
                L("avgpool", kernel=2, bits=5, rounding="half_even"),  # signed requantizer
                L("flatten"),
                L("linear", weight_bits=6),
            ),
        ),
        (2, 8, 8),
    ),
    "conv1d-bn-act-maxpool-relu-avgpool": (
        ModelConfig(
            input_shape=(8, 8),
            layers=(
                L("conv1d", out=4, kernel=3, padding=1, weight_bits=6),
                L("batchnorm"),
                L("act", bits=4),
                L("maxpool", kernel=2),
                L("conv1d", out=6, kernel=2, weight_bits=5),
                L("relu", bits=6, rounding="half_even"),
                L("avgpool", kernel=2, bits=6),  # unsigned input: unsigned requantizer
                L("flatten"),
                L("linear", weight_bits=5),
            ),
        ),
        (1, 8, 8),
    ),
    "binary-bipolar-ternary-act2": (
        ModelConfig(
            input_bits=4,
            layers=(
                L("linear", out=16, weight_bits=1, bias=False),
                L("batchnorm"),
                L("bipolar"),
                L("linear", out=12, weight_bits=2),
                L("act", bits=2),
                L("linear", out=8, weight_bits=1),
                L("bipolar"),
                L("linear", weight_bits=2),
            ),
        ),
        (16,),
    ),
    "relu-1bit": (
        ModelConfig(
            layers=(
                L("linear", out=12, weight_bits=4),
                L("relu", bits=1),
                L("linear", out=8, weight_bits=8, bias=False),
                L("relu", bits=1, rounding="half_even"),
                L("linear", weight_bits=4),
            ),
        ),
        (16,),
    ),
    "module-tiny-cnn": (
        ModelConfig(module=f"{REPO / 'examples/models/tiny_cnn.py'}:build"),
        (1, 8, 8),
    ),
}
N_CLASSES = 5


def _calibrated(cfg: ModelConfig, shape, seed: int = 0) -> nn.Module:
    """A model with random weights (30 % exact zeros, as pruning leaves them), random BatchNorm
    statistics, and activation scales calibrated by a few train-mode forwards; BN folded."""
    torch.manual_seed(seed)
    model = build_model(cfg, shape, N_CLASSES)
    n_in = int(np.prod(shape))
    with torch.no_grad():
        for m in prunable(model).values():
            m.weight.mul_((torch.rand_like(m.weight) > 0.3).float())
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
    model.train()
    for _ in range(4):
        model(torch.rand(64, n_in))
    return fold_batchnorm(model).eval()


def _grid_inputs(cfg: ModelConfig, n_in: int, n: int, seed: int = 0) -> np.ndarray:
    """Random inputs on the input quantizer's grid (multiples of 2**-bits in [0, 1)), plus the
    corners: all zero and all at the maximum."""
    step = 2.0**-cfg.input_bits
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**cfg.input_bits, size=(n, n_in)) * step
    x[0], x[1] = 0.0, 1.0 - step
    return x.astype(np.float32)


def _qonnx_execute(path: Path, x: np.ndarray) -> np.ndarray:
    """qonnx's own execution of the cleaned QONNX model, one input row at a time (the export
    has batch size 1), as hwprune.reference.qonnx_outputs feeds it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    m = ModelWrapper(str(path))
    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    return np.stack([execute_onnx(m, {iname: row[None]})[oname].reshape(-1) for row in x])


# The MLP path also runs in the end-to-end job; the others run nowhere else.
SLOW_CASES = {"mlp-shorthand-half-even"}


def _unquantized_constants(path: Path) -> list[str]:
    """Compute-node inputs that are raw initializers (a weight or bias not passed through a
    Quant / BipolarQuant node would be a float constant, not an integer)."""
    import onnx

    m = onnx.load(str(path))
    inits = {i.name for i in m.graph.initializer}
    compute = ("Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div")
    return [
        f"{n.op_type}:{i}" for n in m.graph.node if n.op_type in compute for i in n.input
        if i in inits
    ]  # fmt: skip


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=[pytest.mark.slow] if c in SLOW_CASES else []) for c in CASES]
)
def test_export_matches_brevitas_exactly(case, tmp_path):
    warnings.filterwarnings("ignore")
    cfg, shape = CASES[case]
    model = _calibrated(cfg, shape)
    n_in = int(np.prod(shape))
    path = tmp_path / "m.onnx"
    export_model(model, n_in, path)
    x = _grid_inputs(cfg if not cfg.module else ModelConfig(input_bits=8), n_in, 150)
    assert _unquantized_constants(path) == []
    want = forward_numpy(model, x)
    got = _qonnx_execute(path, x)
    assert want.shape == (len(x), N_CLASSES)
    assert np.array_equal(got.astype(np.float64), want), (
        f"{case}: {int((got != want).any(1).sum())} of {len(x)} outputs differ"
    )
    assert len(np.unique(want, axis=0)) >= 5  # not a constant network: the check means something


def test_children_named_by_config():
    cfg, shape = CASES["conv1d-bn-act-maxpool-relu-avgpool"]
    model = build_model(cfg, shape, N_CLASSES)
    names = [n for n, _ in model.named_children()]
    assert names == [
        "unflatten", "input_quant", "conv1d0", "batchnorm0", "act0", "maxpool0", "conv1d1",
        "relu0", "avgpool0", "avgpool0_quant", "flatten0", "linear0",
    ]  # fmt: skip
    assert list(prunable(model)) == ["conv1d0", "conv1d1", "linear0"]
    assert model.unflatten.unflattened_size == (8, 8)


def test_conv1d_default_input_shape_is_channels_by_positions():
    cfg = ModelConfig(layers=(L("conv1d", out=2, kernel=3), L("relu"), L("flatten"), L("linear")))
    model = build_model(cfg, (1, 8, 8), 10)
    assert model.unflatten.unflattened_size == (1, 64)
    assert forward_numpy(model, np.zeros((3, 64))).shape == (3, 10)


def test_fold_batchnorm_keeps_outputs_and_zeros():
    """Float level: the folded float model computes what the BN model computes (to float32
    rounding), its state_dict loads into the fold_bn=True architecture, zeros stay zero."""
    cfg, shape = CASES["conv2d-bn-relu-maxpool-stride-avgpool"]
    torch.manual_seed(0)
    model = build_model(cfg, shape, N_CLASSES, quantized=False)
    with torch.no_grad():
        model.conv2d0.weight[0, 0, 0, :] = 0.0
        for bn in (model.batchnorm0, model.batchnorm1):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(-2, 2)
            bn.bias.uniform_(-1, 1)
    folded = fold_batchnorm(model)
    assert isinstance(model.batchnorm0, nn.BatchNorm2d)  # a copy: the original is untouched
    assert isinstance(folded.batchnorm0, nn.Identity)
    x = np.random.default_rng(0).random((64, 128))
    np.testing.assert_allclose(forward_numpy(folded, x), forward_numpy(model, x), atol=1e-5)
    assert torch.all(folded.conv2d0.weight[0, 0, 0, :] == 0)
    target = build_model(cfg, shape, N_CLASSES, quantized=False, fold_bn=True)
    target.load_state_dict(folded.state_dict())
    np.testing.assert_array_equal(forward_numpy(target, x), forward_numpy(folded, x))


def test_folded_quantized_state_dict_loads_into_fold_bn_architecture():
    """A layer without bias before a BatchNorm gets one; quantizer state comes along."""

    def model_has_no_bias(cfg, shape):
        return build_model(cfg, shape, N_CLASSES).conv2d1.bias is None

    cfg, shape = CASES["conv2d-bn-relu-maxpool-stride-avgpool"]
    folded = _calibrated(cfg, shape)
    assert model_has_no_bias(cfg, shape) and folded.conv2d1.bias is not None
    target = build_model(cfg, shape, N_CLASSES, fold_bn=True)
    target.load_state_dict(folded.state_dict())
    x = _grid_inputs(cfg, 128, 50)
    np.testing.assert_array_equal(forward_numpy(target, x), forward_numpy(folded, x))


def test_fold_batchnorm_accuracy():
    """Measured: a conv + BN model trained briefly (QAT) on digits, before and after folding.
    Folding re-quantizes the folded weights, so accuracy moves a little; it must stay close."""
    from hwprune.config import DataConfig
    from hwprune.train.data import load_dataset

    warnings.filterwarnings("ignore")
    split = load_dataset(DataConfig())
    cfg = ModelConfig(
        layers=(
            L("linear", out=32, weight_bits=4),
            L("batchnorm"),
            L("relu", bits=4),
            L("linear", weight_bits=4),
        )
    )
    torch.manual_seed(0)
    model = build_model(cfg, split.shape, split.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.as_tensor(split.x_train), torch.as_tensor(split.y_train)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(4):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            out = model(x[idx])
            nn.functional.cross_entropy(getattr(out, "value", out), y[idx]).backward()
            opt.step()
    before = (forward_numpy(model, split.x_test).argmax(1) == split.y_test).mean()
    after = (forward_numpy(fold_batchnorm(model), split.x_test).argmax(1) == split.y_test).mean()
    print(f"fold_batchnorm on digits: accuracy {before:.4f} before, {after:.4f} after")
    assert before > 0.85
    assert after >= before - 0.03


def test_float_and_wider_variants():
    cfg, shape = CASES["conv2d-bn-relu-maxpool-stride-avgpool"]
    flt = build_model(cfg, shape, N_CLASSES, quantized=False, width_factor=3)
    assert isinstance(flt.conv2d0, nn.Conv2d) and flt.conv2d0.out_channels == 12
    assert flt.conv2d1.out_channels == 9
    assert flt.linear0.out_features == N_CLASSES  # the output layer keeps its width
    assert not any("brevitas" in type(m).__module__ for m in flt.modules())
    assert forward_numpy(flt, np.zeros((2, 128))).shape == (2, N_CLASSES)
    bip = build_model(CASES["binary-bipolar-ternary-act2"][0], (16,), N_CLASSES, quantized=False)
    x = torch.tensor([[-0.5, 0.0, 0.5]], requires_grad=True)
    y = bip.bipolar0(x)
    y.sum().backward()
    assert y.tolist() == [[-1.0, 1.0, 1.0]] and x.grad.tolist() == [[1.0, 1.0, 1.0]]


def test_every_layer_kind_has_a_builder():
    assert set(LAYER_BUILDERS) == set(LAYER_KEYS)


MODULE_WITH_BN = """
from collections import OrderedDict
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import SignedBinaryActPerTensorConst
from brevitas.quant.scaled_int import Int32Bias
from torch import nn
from hwprune.train.model import input_quant, relu_quant, weight_quant

def build(shape, n_classes):
    return nn.Sequential(OrderedDict(
        inp=QuantIdentity(act_quant=input_quant(8), return_quant_tensor=True),
        block=nn.Sequential(OrderedDict(
            fc=QuantLinear(16, 8, bias=False, weight_quant=weight_quant(4), bias_quant=Int32Bias),
            bn=nn.BatchNorm1d(8),
            act=QuantReLU(act_quant=relu_quant(4, "floor"), return_quant_tensor=True),
        )),
        fc2=QuantLinear(8, 6, weight_quant=weight_quant(4), bias_quant=Int32Bias),
        sign=QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True),
        out=QuantLinear(6, n_classes, weight_quant=weight_quant(4), bias_quant=Int32Bias),
    ))
"""


def test_module_model_fold_bn_and_float_copy(tmp_path):
    """A module model with a nested BatchNorm folds, and its state_dict loads into the
    fold_bn=True build; the float copy swaps every Brevitas layer for a torch one."""
    (tmp_path / "net.py").write_text(MODULE_WITH_BN)
    cfg = ModelConfig(module=f"{tmp_path / 'net.py'}:build")
    torch.manual_seed(0)
    model = build_model(cfg, (16,), 3)
    assert list(prunable(model)) == ["block.fc", "fc2", "out"]
    model.train()
    for _ in range(3):
        model(torch.rand(32, 16))
    folded = fold_batchnorm(model)
    assert isinstance(folded.block.bn, nn.Identity) and folded.block.fc.bias is not None
    target = build_model(cfg, (16,), 3, fold_bn=True)
    target.load_state_dict(folded.state_dict())
    x = _grid_inputs(ModelConfig(), 16, 30)
    np.testing.assert_array_equal(forward_numpy(target, x), forward_numpy(folded, x))
    flt = build_model(cfg, (16,), 3, quantized=False)
    assert type(flt.block.fc) is nn.Linear and type(flt.block.act) is nn.ReLU
    assert type(flt.sign) is Sign and type(flt.inp) is nn.Identity
    assert not any("brevitas" in type(m).__module__ for m in flt.modules())
    with pytest.raises(HwpruneError, match="layer-list model"):
        build_model(cfg, (16,), 3, width_factor=2)
    (tmp_path / "net2.py").write_text(
        MODULE_WITH_BN.replace(", bias_quant=Int32Bias),\n", "),\n", 1)
    )
    plain = build_model(ModelConfig(module=f"{tmp_path / 'net2.py'}:build"), (16,), 3)
    with pytest.raises(HwpruneError, match="no bias quantizer"):
        fold_batchnorm(plain)


@pytest.mark.parametrize(
    ("module", "match"),
    [
        ("nope/missing.py:build", "no such file"),
        ("{repo}/examples/models/tiny_cnn.py:nothing", "has no function 'nothing'"),
        ("hwprune_no_such_package.models:build", "importing hwprune_no_such_package"),
        ("operator:mul", "returned tuple"),
    ],
)
def test_module_errors(module, match):
    cfg = ModelConfig(module=module.format(repo=REPO))
    with pytest.raises(HwpruneError, match=match):
        build_model(cfg, (4,), 2)


def test_module_path_relative_to_current_directory(monkeypatch):
    monkeypatch.chdir(REPO / "examples")
    model = build_model(ModelConfig(module="models/tiny_cnn.py:build"), (1, 8, 8), 10)
    assert forward_numpy(model, np.zeros((2, 64))).shape == (2, 10)


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ((L("batchnorm"), L("linear")), "follows the input"),
        ((L("linear", out=4), L("linear")), "unquantized input"),
        ((L("conv2d", out=2), L("linear")), "flatten"),
        ((L("linear", out=4), L("relu"), L("batchnorm"), L("linear")), "directly follow"),
        ((L("conv2d", out=2), L("relu"), L("avgpool", kernel=3), L("flatten"), L("linear")),
         "power-of-two"),
        ((L("linear", out=4), L("act", bits=1), L("linear")), "bipolar"),
        ((L("conv2d", out=2, kernel=9), L("relu"), L("flatten"), L("linear")), "smaller than"),
        ((L("linear", out=4), L("maxpool"), L("linear")), "pool before the flatten"),
    ],
)  # fmt: skip
def test_bad_layer_lists(layers, match):
    with pytest.raises(HwpruneError, match=match):
        build_model(ModelConfig(layers=layers), (1, 8, 8), 10)


def test_unit_activations():
    """Each layer's units after its activation: by hand for the MLP, channel means for conv."""
    cfg, shape = CASES["mlp-shorthand-half-even"]
    model = _calibrated(cfg, shape)
    x = _grid_inputs(cfg, 16, 40)
    acts = unit_activations(model, x, ["linear0", "linear2"])
    with torch.no_grad():
        h = model.relu0(model.linear0(model.input_quant(torch.as_tensor(x))))
    np.testing.assert_array_equal(acts["linear0"], h.value.numpy())
    np.testing.assert_array_equal(acts["linear2"], forward_numpy(model, x))  # output layer

    cfg, shape = CASES["conv2d-bn-relu-maxpool-stride-avgpool"]
    model = _calibrated(cfg, shape)
    x = _grid_inputs(cfg, 128, 20)
    acts = unit_activations(model, x, ["conv2d0"])
    with torch.no_grad():
        h = model[:5](torch.as_tensor(x))  # up to and including relu0
    assert acts["conv2d0"].shape == (20, 4)
    np.testing.assert_allclose(acts["conv2d0"], h.value.mean((2, 3)).numpy(), rtol=1e-6)
    with pytest.raises(HwpruneError, match="not a prunable layer"):
        unit_activations(model, x, ["relu0"])


def test_export_refuses_unfolded_batchnorm(tmp_path):
    cfg, shape = CASES["conv2d-bn-relu-maxpool-stride-avgpool"]
    model = build_model(cfg, shape, N_CLASSES)
    with pytest.raises(HwpruneError, match="fold BatchNorm before export"):
        export_model(model, 128, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
