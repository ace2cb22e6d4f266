"""Convolution and pooling geometry public models use beyond the plain case: grouped and
dilated convolutions, MaxPool with ceil_mode, and integer zero points, bit-exact against
qonnx execution and through C-simulation and RTL simulation."""

from __future__ import annotations

import numpy as np

from hwprune import api
from hwprune.frontend.qonnx import import_qonnx
from hwprune.ir import golden
from hwprune.ir.graph import Requant
from hwprune.sim import ladder
from tests.frontend.op_models import build_conv_variants, build_per_channel_input


def test_group_dilation_ceil_zero_point_bit_exact(tmp_path):
    p = build_conv_variants(tmp_path / "m.onnx", 0)
    g = import_qonnx(p)
    (inp,) = g.inputs
    assert (inp.range.lo, inp.range.hi) == (-2, 13)  # 4-bit unsigned, zero point 2
    last = g.ops[-1]
    assert isinstance(last, Requant) and (last.lo, last.hi) == (-13, 18)  # zero point -3
    x, q = ladder.sim_vectors(g, p, 1000, 0)
    np.testing.assert_array_equal(golden.outputs(g, x), q)
    out = tmp_path / "b"
    api.compile(p, out)
    # (the AXI-Stream top is checked by the coverage and real-model ladders)
    rep = api.sim(out, vectors=30, progress=False, levels=["qonnx", "csim", "rtl"])
    assert [lv.passed for lv in rep.levels] == [True] * 3


def test_per_channel_input_scale_bit_exact(tmp_path):
    # The host computes the per-channel input levels; the layer multiplies each column by
    # its integer scale factor, so the sum stays exact.
    p = build_per_channel_input(tmp_path / "m.onnx", 0)
    g = import_qonnx(p)
    assert isinstance(g.host_input.scale, tuple) and len(g.host_input.scale) == 12
    x, q = ladder.sim_vectors(g, p, 1000, 0)
    np.testing.assert_array_equal(golden.outputs(g, x), q)
