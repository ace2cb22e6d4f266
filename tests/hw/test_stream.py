"""The streaming lowering's kernels: read back from the layers' rows, chained pixel by pixel
through every stream stage, they give the golden interpreter's values at every element, on
imported models (every geometry the importer takes) before and after the passes, and on a
hand-built graph whose pruned filter is folded into the next layer's position-dependent bias."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from hwprune.frontend.qonnx import import_qonnx
from hwprune.hw import stream
from hwprune.ir import golden
from hwprune.ir.graph import (
    Dense,
    Graph,
    Input,
    IntRange,
    Requant,
    Row,
    Window,
    from_json,
    to_json,
    verify,
)
from hwprune.ir.passes import optimize


def chained(g: Graph, stages, x: np.ndarray) -> list[np.ndarray]:
    """Every stage's output pixels, each stage fed the one before it (batch, OH, OW, ch)."""
    px = stream.pixels(stages[0].in_map, x)
    out = []
    for st in stages:
        wv = stream.window_vectors(st, px)
        b, oh, ow, n = wv.shape
        px = golden.outputs(st.kernel, wv.reshape(-1, n)).reshape(b, oh, ow, -1)
        out.append(px)
    return out


def assert_stream_exact(g: Graph, stages, n: int = 60) -> None:
    x = golden.stimulus_vectors(g, n, 0)
    vals = golden.run(g, x)
    for st, got in zip(stages, chained(g, stages, x)):
        want = stream.pixels(st.out_map, vals[st.ops[-1]])
        c, h, w = st.out_map.shape
        idx = np.array(st.out_map.index).reshape(c, h, w)[list(st.out_map.channels)]
        present = np.broadcast_to(idx.transpose(1, 2, 0)[None] >= 0, got.shape)
        np.testing.assert_array_equal(got[present], want[present], err_msg=st.name)


def conv_models_in(folder, names) -> dict:
    """Imported CNN models by name, built into ``folder``: build_conv_variants (groups,
    dilation, ceil_mode), the coverage models cnn2d, trunc_avgpool and conv1d_bipolar, and
    the Brevitas layer models conv2d_stride_pad, pools_ternary_binary, shaped_input_cnn and
    conv1d_bipolar (as layer_conv1d_bipolar)."""
    from tests import qonnx_coverage_models as cov
    from tests import qonnx_layer_models as lay
    from tests.frontend.op_models import build_conv_variants

    warnings.filterwarnings("ignore")
    paths = {}
    for name in names:
        p = folder / f"{name}.onnx"
        if name == "conv_variants":
            paths[name] = build_conv_variants(p, 0)
        elif name in cov.COVERAGE_MODELS:
            paths[name] = cov.COVERAGE_MODELS[name](p, 0)
        else:
            model, shape = getattr(lay, name.removeprefix("layer_"))()
            lay.export_shaped(model, shape if isinstance(shape, tuple) else (shape,), p)
            paths[name] = p
    return paths


@pytest.fixture(scope="module")
def conv_models(tmp_path_factory):
    return conv_models_in(tmp_path_factory.mktemp("conv_models"), STAGES)


# Each model's stages: stride, padding, dilation, groups, 1-D, thresholds, average and max
# pooling (with ceil_mode padding), a constant folded at one position only (cnn2d after the
# passes: a pooled corner whose range is one point).
STAGES = {
    "conv_variants": ["conv0+thr0", "maxpool0"],
    "cnn2d": ["conv0+thr0", "maxpool0", "conv1+thr1", "avgpool0+thr2"],
    "trunc_avgpool": ["conv0+thr0", "avgpool0+trunc0"],
    "conv1d_bipolar": ["conv0+thr0", "maxpool0"],
    "conv2d_stride_pad": ["conv0+act0", "maxpool0"],
    "pools_ternary_binary": ["conv0+act0", "maxpool0", "conv1+act1", "avgpool0+act2"],
    "shaped_input_cnn": ["conv0+act0"],
}


@pytest.mark.parametrize("passes", [False, True], ids=["imported", "optimized"])
@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_kernels_chained_pixel_by_pixel_equal_golden(conv_models, name, passes):
    g = import_qonnx(conv_models[name])
    if passes:
        g = optimize(g)
    stages, why = stream.stages(g)
    assert ["+".join(st.ops) for st in stages] == STAGES[name]
    assert why.endswith("not a convolution or pooling")  # the dense head
    assert_stream_exact(g, stages)


def test_windows_survive_json(conv_models):
    g = optimize(import_qonnx(conv_models["cnn2d"]))
    back = from_json(to_json(g))
    assert [getattr(op, "window", None) for op in back.ops] == [
        getattr(op, "window", None) for op in g.ops
    ]
    assert any(op.window.consts for op in g.ops if getattr(op, "window", None))


def _conv(name: str, src: str, shape, k: np.ndarray, bias, pad: int) -> Dense:
    """A 'same'-style stride-1 convolution of a (C, H, W) map as a windowed Dense."""
    c, h, w = shape
    f, _, kh, kw = k.shape
    oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    rows = []
    for o in range(f):
        for y in range(oh):
            for x in range(ow):
                terms = {}
                for ci in range(c):
                    for dy in range(kh):
                        for dx in range(kw):
                            iy, ix = y - pad + dy, x - pad + dx
                            if 0 <= iy < h and 0 <= ix < w and k[o, ci, dy, dx]:
                                terms[(ci * h + iy) * w + ix] = int(k[o, ci, dy, dx])
                cols = tuple(sorted(terms))
                rows.append(Row(int(bias[o]), cols, tuple(terms[q] for q in cols)))
    win = Window(
        (c, h, w),
        (f, oh, ow),
        (kh, kw),
        (1, 1),
        (pad,) * 4,
        (1, 1),
        1,
        tuple(range(c * h * w)),
        tuple(range(f * oh * ow)),
    )
    return Dense(name, (src,), c * h * w, tuple(rows), 0, win)


def pruned_filter_graph() -> Graph:
    """conv a (6x6 -> 4x4, 3 filters), ReLU, conv b ('same', 2 filters), requant: filter 1 of
    a is pruned (all weights zero, bias 5), so after the ReLU its map is the constant 5, which
    the passes fold into b's biases; b pads by 1, so the folded amount is 5 times the sum of
    b's weights on channel 1 over the real taps (a corner sees 4 of 9). Its meta asks for
    both layers to stream."""
    rng = np.random.default_rng(0)
    ka = rng.integers(-3, 4, size=(3, 1, 3, 3))
    ka[1] = 0
    kb = rng.integers(-3, 4, size=(2, 3, 3, 3))
    kb[:, 1] = np.arange(1, 10).reshape(3, 3)  # nonzero on every tap of channel 1
    return Graph(
        (
            Input("x", (), 36, IntRange(0, 15), 0),
            _conv("a", "x", (1, 6, 6), ka, [1, 5, -2], 0),
            Requant("ra", ("a",), 0, 0, 31),
            _conv("b", "ra", (3, 4, 4), kb, [3, -4], 1),
            Requant("rb", ("b",), 2, -8, 7),
        ),
        ("rb",),
        {"conv": "stream", stream.STREAM_KEY: 2},
    )


def test_pruned_filter_becomes_flag_terms_hand_worked():
    # The stream keeps one bias per filter and adds 5 * w per real tap (pruned_filter_graph).
    g = pruned_filter_graph()
    verify(g)
    opt = optimize(g)
    verify(opt)
    b = opt.op("b")
    corner = b.rows[b.window.out_index[0]]
    assert corner.bias == 3 + 5 * (5 + 6 + 8 + 9)  # taps (1,1) (1,2) (2,1) (2,2) of 1..9
    stages, why = stream.stages(opt)
    assert why == "" and [st.ops for st in stages] == [("a", "ra"), ("b", "rb")]
    assert stages[0].out_map.channels == (0, 2)  # the pruned filter is not computed
    assert stages[1].flag
    weights, bias, flags = stream.dense_kernel(b)
    # The centre tap (4) is real everywhere: its 5 * 5 stays in the bias.
    assert bias == {0: 3 + 25, 1: -4 + 25}
    assert flags == {(f, t): 5 * (t + 1) for f in (0, 1) for t in range(9) if t != 4}
    assert_stream_exact(opt, stages)


def test_rows_that_differ_by_position_do_not_stream():
    rng = np.random.default_rng(1)
    k = rng.integers(1, 4, size=(2, 1, 3, 3))
    conv = _conv("c", "x", (1, 5, 5), k, [0, 0], 0)
    rows = list(conv.rows)
    r = rows[4]
    rows[4] = Row(r.bias, r.cols, (r.weights[0] + 1, *r.weights[1:]))
    g = Graph((Input("x", (), 25, IntRange(0, 3), 0), replace(conv, rows=tuple(rows))), ("c",))
    verify(g)
    stages, why = stream.stages(g)
    assert stages == () and why.startswith("c: filter 0 weighs channel 0 at tap 0 by")


def test_verify_refuses_a_window_that_misplaces_rows():
    k = np.ones((1, 1, 2, 2), dtype=int)
    conv = _conv("c", "x", (1, 3, 3), k, [0], 0)
    bad = replace(conv, window=replace(conv.window, out_index=(0, 0, 1, 2)))
    g = Graph((Input("x", (), 9, IntRange(0, 3), 0), bad), ("c",))
    with pytest.raises(ValueError, match="does not place each of its 4 outputs once"):
        verify(g)


def test_thresholds_clipped_per_position_merge_per_channel():
    # The importer drops thresholds an element's range never reaches, so border positions
    # (narrower ranges under padding) carry shorter lists; they count alike on their ranges
    # and stream as one list per channel.
    from hwprune.ir.graph import Threshold

    k = np.ones((1, 1, 3, 3), dtype=int)
    conv = _conv("c", "x", (1, 5, 5), k, [0], 1)
    base = Graph((Input("x", (), 25, IntRange(0, 3), 0), conv), ("c",))
    ranges = base.values["c"].ranges
    full = (2, 9, 16, 24)
    lists = tuple(tuple(t for t in full if t <= r.hi) for r in ranges)
    assert len({len(ts) for ts in lists}) > 1  # corners lose the top threshold
    g = Graph((*base.ops, Threshold("t", ("c",), lists, 0, 1, 0)), ("t",))
    verify(g)
    stages, why = stream.stages(g)
    assert why == "" and stages[0].kernel.op("t").thresholds == (full,)
    assert_stream_exact(g, stages)
