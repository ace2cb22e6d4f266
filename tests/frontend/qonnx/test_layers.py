"""QONNX import of convolutions, pooling, flatten and 1-bit / binary / ternary quantizers:
the golden interpreter equals qonnx execution exactly on Brevitas exports, kernel counts
match qonnx's own weight quantization, and unsupported geometry fails with one line naming
the node."""

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from torch import manual_seed, nn

from hwprune.errors import HwpruneError
from hwprune.frontend.qonnx import HANDLERS, SUPPORTED_OPS, import_qonnx
from hwprune.ir import golden
from hwprune.ir.graph import Dense, Max, Requant, Rounding, Threshold
from hwprune.sim.reference import qonnx_outputs
from tests import qonnx_layer_models as lm

# model builder -> (IR op kinds it lowers to, Dense kinds in meta["layers"] in order,
# roundings of its activation Requants)
MODELS = {
    "conv2d_stride_pad": (
        lm.conv2d_stride_pad,
        {Dense, Requant, Max},
        ["conv2d", "linear"],
        {Rounding.HALF_EVEN},
    ),
    "pools_ternary_binary": (
        lm.pools_ternary_binary,
        {Dense, Requant, Max},
        ["conv2d", "conv2d", "avgpool", "linear"],
        {Rounding.FLOOR, Rounding.HALF_EVEN},
    ),
    "conv1d_bipolar": (lm.conv1d_bipolar, {Dense, Max, Threshold}, ["conv1d", "linear"], set()),
}

# Dense names by layer kind.
PREFIX = {"conv1d": "conv", "conv2d": "conv", "avgpool": "avgpool", "linear": "dense"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """name -> (Brevitas model, QONNX path), each model exported once per module."""
    from hwprune.export.qonnx import export_model

    warnings.filterwarnings("ignore")
    done = {}

    def get(name):
        if name not in done:
            model, n_in = MODELS[name][0]()
            path = tmp_path_factory.mktemp(name) / "m.onnx"
            export_model(model, n_in, path)
            done[name] = (model, path)
        return done[name]

    return get


@pytest.fixture(params=sorted(MODELS))
def exported(request, exports):
    """(name, Brevitas model, QONNX path) for every model."""
    return (request.param, *exports(request.param))


def test_golden_equals_qonnx_and_brevitas(exported):
    name, model, path = exported
    g = import_qonnx(path)
    assert {type(op) for op in g.ops[1:]} == MODELS[name][1]
    x = golden.stimulus_vectors(g, 200, seed=5)
    want = golden.outputs(g, x)
    np.testing.assert_array_equal(qonnx_outputs(path, g, x), want)
    (inp,) = g.inputs
    got = lm.brevitas_outputs(model, x, inp.exp, g.meta["output_exp"])
    np.testing.assert_array_equal(got, want)


def test_layer_meta_counts_kernels(exported):
    name, _, path = exported
    g = import_qonnx(path)
    layers = g.meta["layers"]
    assert [v["kind"] for v in layers.values()] == MODELS[name][2]
    assert set(layers) == {op.name for op in g.dense_ops()}
    learned = [v for v in layers.values() if v["kind"] != "avgpool"]
    assert [v["kernel_nonzeros"] for v in learned] == lm.quantized_kernel_nonzeros(path)
    for op in g.dense_ops():
        v = layers[op.name]
        assert op.name.startswith(PREFIX[v["kind"]])
        assert op.n_out % v["positions"] == 0
        # Padding only removes terms: at most nonzeros x positions remain.
        assert op.n_terms <= v["kernel_nonzeros"] * v["positions"]
    assert g.meta["input_shape"] == [g.inputs[0].size]
    assert {op.rounding for op in g.ops if isinstance(op, Requant)} == MODELS[name][3]


def test_maxpool_1d_pads_hand_worked(exports):
    """MaxPool1d(3, stride 2, pad 1) over 12 positions: windows over the valid elements only."""
    g = import_qonnx(exports("conv1d_bipolar")[1])
    (pool,) = (op for op in g.ops if isinstance(op, Max))
    assert pool.groups[:6] == ((0, 1), (1, 2, 3), (3, 4, 5), (5, 6, 7), (7, 8, 9), (9, 10, 11))
    assert pool.groups[6] == (12, 13)  # channel 1 starts at 12
    (sign,) = (op for op in g.ops if isinstance(op, Threshold))
    assert (sign.base, sign.step, sign.exp) == (-1, 2, 0)
    assert set(sign.thresholds) == {(0,)}


def test_shaped_graph_input(tmp_path):
    """A (1, C, H, W) graph input: Input size is the product, meta records the shape; an
    unpadded conv keeps every nonzero kernel weight at every position."""
    warnings.filterwarnings("ignore")
    model, shape = lm.shaped_input_cnn()
    path = tmp_path / "m.onnx"
    lm.export_shaped(model, shape, path)
    g = import_qonnx(path)
    assert g.meta["input_shape"] == [2, 6, 6] and g.inputs[0].size == 72
    conv = g.op("conv0")
    v = g.meta["layers"]["conv0"]
    assert (v["kind"], v["kernel_weights"], v["positions"]) == ("conv2d", 54, 16)
    assert conv.n_terms == v["kernel_nonzeros"] * v["positions"]
    x = golden.stimulus_vectors(g, 200, seed=6)
    np.testing.assert_array_equal(qonnx_outputs(path, g, x), golden.outputs(g, x))


# --- hand-built QONNX: 1-bit Quant on an activation -----------------------------------------


def _init(name, arr):
    return helper.make_tensor(name, TensorProto.FLOAT, list(np.shape(arr)), np.ravel(arr))


def _quant(inp, out, scale, bits, signed, rounding="FLOOR", narrow=0):
    inits = [_init(f"{out}_s", scale), _init(f"{out}_z", 0.0), _init(f"{out}_b", float(bits))]
    node = helper.make_node(
        "Quant",
        [inp, f"{out}_s", f"{out}_z", f"{out}_b"],
        [out],
        domain="qonnx.custom_op.general",
        signed=signed,
        narrow=narrow,
        rounding_mode=rounding,
    )
    return node, inits


def _one_bit_model(path, signed: int):
    """x (1, 6) -> 4-bit input -> MatMul (4-bit weights) -> Relu -> 1-bit Quant -> MatMul."""
    rng = np.random.default_rng(7)
    w1 = rng.integers(-7, 8, size=(6, 5)) / 8.0
    w2 = rng.integers(-7, 8, size=(5, 3)) / 8.0
    nodes, inits = [], []
    for node, ini in (
        _quant("x", "xq", 1 / 16, 4, 0),
        _quant("w1", "w1q", 1 / 8, 4, 1),
        _quant("w2", "w2q", 1 / 8, 4, 1),
    ):
        nodes.append(node)
        inits += ini
    inits += [_init("w1", w1), _init("w2", w2)]
    nodes += [helper.make_node("MatMul", ["xq", "w1q"], ["h"], name="mm0")]
    nodes += [helper.make_node("Relu", ["h"], ["r"], name="relu0")]
    node, ini = _quant("r", "a", 0.25, 1, signed)
    nodes.append(node)
    inits += ini
    nodes += [helper.make_node("MatMul", ["a", "w2q"], ["y"], name="mm1")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


@pytest.mark.parametrize("signed", [0, 1])
def test_one_bit_quant_on_activation(tmp_path, signed):
    """Unsigned 1 bit is {0, 1} (a Requant); signed 1 bit is qonnx's sign (a Threshold, which
    after the ReLU is always +1)."""
    path = _one_bit_model(tmp_path / "m.onnx", signed)
    g = import_qonnx(path)
    kinds = {type(op) for op in g.ops}
    assert (Threshold in kinds) == bool(signed)
    if not signed:
        (act,) = (op for op in g.ops if isinstance(op, Requant))
        assert (act.lo, act.hi) == (0, 1)
    x = golden.stimulus_vectors(g, 200, seed=8)
    np.testing.assert_array_equal(qonnx_outputs(path, g, x), golden.outputs(g, x))


# --- errors -------------------------------------------------------------------------------


def _conv_net(**conv_kw):
    from brevitas.nn import QuantConv2d

    return nn.Sequential(
        nn.Unflatten(1, (2, 6, 6)),
        lm._qid(4),
        QuantConv2d(2, 2, 3, bias=False, weight_quant=lm.weight_quant(4), **conv_kw),
        lm._qrelu(4),
        nn.Flatten(),
    )


def _avg_net():
    return nn.Sequential(
        nn.Unflatten(1, (1, 6, 6)),
        lm._qid(4),
        nn.AvgPool2d(3),
        lm._qid(4),
        nn.Flatten(),
    )


@pytest.mark.parametrize("conv_kw", [{"groups": 2}, {"dilation": 2}, {"groups": 2, "padding": 2}])
def test_grouped_and_dilated_conv_match_qonnx(tmp_path, conv_kw):
    # Brevitas' grouped and dilated convolutions: each output channel reads its group's
    # input channels, a dilated kernel every d-th element; golden equals qonnx.
    from hwprune.export.qonnx import export_model

    warnings.filterwarnings("ignore")
    manual_seed(0)
    export_model(_conv_net(**conv_kw).eval(), 72, tmp_path / "m.onnx")
    g = import_qonnx(tmp_path / "m.onnx")
    x = golden.stimulus_vectors(g, 300, seed=3)
    np.testing.assert_array_equal(golden.outputs(g, x), qonnx_outputs(tmp_path / "m.onnx", g, x))


@pytest.mark.parametrize(
    "build, node, words",
    [(_avg_net, "AveragePool_0", ("3x3", "not a power of two", "2x2, 4x4"))],
    ids=["avgpool_3x3"],
)
def test_unsupported_geometry_is_one_line_naming_the_node(tmp_path, build, node, words):
    from hwprune.export.qonnx import export_model

    warnings.filterwarnings("ignore")
    manual_seed(0)
    model = build().eval()
    export_model(model, 72 if node == "Conv_0" else 36, tmp_path / "m.onnx")
    with pytest.raises(HwpruneError) as e:
        import_qonnx(tmp_path / "m.onnx")
    msg = str(e.value)
    assert f"node {node!r}" in msg and "\n" not in msg
    for w in words:
        assert w in msg


def test_supported_ops_is_the_handler_table():
    assert set(SUPPORTED_OPS) == set(HANDLERS)
