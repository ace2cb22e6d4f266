"""qonnx execution as the ladder's reference: the model's own float semantics, read back as
integers on the hardware's grids so the comparison with every other level is exact.

    qonnx_outputs(model, g, x)          qonnx on IR input integers (models without host input)
    draw_model_inputs(model, n, seed)   seeded model inputs from the input's datatype or type
    qonnx_reference(model, g, feeds)    (IR input integers, output integers) from model inputs
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwprune.errors import HwpruneError
from hwprune.ir.graph import Graph


def qonnx_outputs(model_onnx: Path, g: Graph, x: np.ndarray, tick=None) -> np.ndarray:
    """qonnx execution of the model on IR input integers, as integers on the output grid
    (for models whose input quantizer reads the graph input directly). ``tick(n)`` is
    called after each vector with the number done."""
    from hwprune.frontend.qonnx import load_model

    m = load_model(model_onnx)
    (inp,) = g.inputs
    iname = m.graph.input[0].name
    shape = [1, *(int(d) for d in m.get_tensor_shape(iname)[1:])]  # flat or (1, C, H, W)
    feeds = (x * 2.0**inp.exp).astype(np.float32).reshape(len(x), *shape)
    return _qonnx_run(m, g, feeds, tick)[1]


def draw_model_inputs(model_onnx: Path, n: int, seed: int, input_type=None) -> np.ndarray:
    """n seeded model inputs, shape (n, 1, ...), drawn from the input's annotated datatype:
    FLOAT32 uniform in [0, 1), an integer type (BIPOLAR, INTn, UINTn) uniform on its values.

    With a stated ``input_type`` (a FixedType), the inputs are what the host hands qonnx and
    the hardware: three corner vectors (all minimum, all maximum, zeros), then half levels
    drawn uniformly on the type's grid and half floats spread over twice the type's range,
    quantized by the host exactly as ap_fixed would (so rounding and overflow are exercised).
    """
    from hwprune.frontend.qonnx import load_model

    m = load_model(model_onnx)
    iname = m.graph.input[0].name
    shape = (1, *(int(d) for d in m.get_tensor_shape(iname)[1:]))
    dt = m.get_tensor_datatype(iname)
    rng = np.random.default_rng(seed)
    if input_type is not None:
        t = input_type
        corners = np.array([t.lo, t.hi, 0], dtype=np.int64)[: max(n, 0)]
        k = max(n - len(corners), 0)
        levels = rng.integers(t.lo, t.hi + 1, size=(k // 2, *shape))
        span = (t.hi - t.lo + 1) * 2.0**t.exp
        floats = rng.uniform(-span, span, size=(k - k // 2, *shape))
        drawn = np.concatenate([levels, t.quantize(floats)])
        full = np.broadcast_to(corners.reshape(-1, *([1] * len(shape))), (len(corners), *shape))
        return t.levels_to_float(np.concatenate([full, drawn])).astype(np.float32)
    if dt.name == "FLOAT32":
        return rng.random((n, *shape), dtype=np.float32)
    if dt.is_integer() and dt.get_num_possible_values() <= 2**16:
        vals = [v for v in range(int(dt.min()), int(dt.max()) + 1) if dt.allowed(v)]
        return rng.choice(np.array(vals, dtype=np.float32), size=(n, *shape))
    from hwprune.frontend.qonnx.names import UserNames

    raise HwpruneError(
        f"input {UserNames(m.graph).tensor(iname)!r} has datatype {dt.name}; FLOAT32 and "
        "integer datatypes (at most 2**16 values) can be drawn"
    )


def qonnx_reference(model_onnx: Path, g: Graph, feeds: np.ndarray, tick=None) -> tuple:
    """qonnx execution of the model on model inputs ``feeds`` (n, 1, ...).

    Returns (IR input integers, qonnx's output integers), both (n, size) int64. The IR input
    is read from qonnx's full execution context (tensor g.host_input.tensor divided by its
    scale), so the host-side preprocessing is qonnx's own.
    """
    from hwprune.frontend.qonnx import load_model

    return _qonnx_run(load_model(model_onnx), g, feeds, tick)


def _exact_ints(t: np.ndarray, scale) -> np.ndarray:
    """t / scale as int64, exact: a value off the grid becomes a marker that never matches."""
    scaled = np.asarray(t, dtype=np.float64) / np.asarray(scale, dtype=np.float64)
    ints = np.round(scaled)
    ints = np.where(ints == scaled, ints, np.iinfo(np.int64).min)
    return ints.astype(np.int64)


# How far (in integer steps) qonnx's float32 tensor may sit from integer * scale (+ offset)
# and still name that integer: float32 rounding of its own products and sums is ~1e-6 of a
# step for these sizes, while any other integer is a whole step away.
_INT_TOLERANCE = 2.0**-10


def _host_ints(t: np.ndarray, scale, offset=None) -> np.ndarray:
    """The integers k that qonnx's float tensor ``t`` (n, size) holds as k * scale + offset.

    With a float (non power-of-two) scale, qonnx computes k * scale in float32 (a quantizer)
    or sums float32 products (a layer), so t / scale is an integer only up to float32
    rounding: k is the nearest integer, accepted when it is unambiguous (within
    ``_INT_TOLERANCE``); anything else is a marker that never matches. The comparison with
    the hardware's integers is then exact."""
    t = np.asarray(t, dtype=np.float64)
    if offset is not None:
        t = t - np.asarray(offset, dtype=np.float64)
    scaled = t / np.asarray(scale, dtype=np.float64)
    ints = np.round(scaled)
    ok = np.abs(scaled - ints) <= _INT_TOLERANCE
    return np.where(ok, ints, np.iinfo(np.int64).min).astype(np.int64)


def _qonnx_run(m, g: Graph, feeds: np.ndarray, tick=None) -> tuple[np.ndarray, np.ndarray]:
    """Execute the cleaned model on each input; return (IR input ints, output ints).

    With g.host_output the output integers are qonnx's tensor before the float tail
    divided by its scale, and the tail mapped over those integers by qonnx must reproduce
    the model output bit for bit (else the vector is marked as a mismatch).
    """
    from qonnx.core.onnx_exec import execute_onnx

    from hwprune.frontend.qonnx.chains import run_nodes, start_values

    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    hi, ho = g.host_input, g.host_output
    xs, outs, starts, logits = [], [], [], []
    for k, feed in enumerate(feeds):
        if tick is not None:
            tick(k)
        ctx = execute_onnx(m, {iname: np.asarray(feed, dtype=np.float32)}, True)
        if hi is not None:
            xs.append(_host_ints(ctx[hi.tensor].reshape(-1), hi.scale))
        outs.append(np.asarray(ctx[oname]).reshape(-1))
        if ho is not None:
            starts.append(np.asarray(ctx[ho.tensor]))
            if ho.final is not None:  # compare the logits; the final op is checked by argmax
                by_name = {n.name: n for n in m.graph.node}
                logits.append(np.asarray(ctx[by_name[ho.final].input[0]]).reshape(-1))
    x = np.array(xs) if hi is not None else None
    if x is not None and np.any(x == np.iinfo(np.int64).min):
        raise HwpruneError(
            f"qonnx tensor {hi.tensor!r} is off its scale {hi.scale}; the host-side "
            "input preprocessing does not produce the IR input grid"
        )
    y = np.array(outs)
    if ho is None:
        return x, to_grid(y, g)
    t = np.concatenate(starts)  # (n, ...): the batch replaces the model's batch of 1
    flat = t.reshape(len(t), -1)
    offset = 0.0 if ho.offset is None else np.asarray(ho.offset, dtype=np.float64)
    ints = _host_ints(flat, ho.scale, ho.offset)
    ref = np.array(logits) if ho.final is not None else y  # what the tail must reproduce
    # The host's logits: the integers on the tensor's grid, mapped by the tail.
    host = ints * np.asarray(ho.scale, dtype=np.float64) + offset
    if ho.tail:
        by_name = {n.name: n for n in m.graph.node}
        nodes = [by_name[k] for k in ho.tail]
        consts = {i.name: np.asarray(ctx[i.name]) for i in m.graph.initializer}
        sv = start_values(ints, np.asarray(ho.scale, dtype=np.float64))
        if ho.offset is not None:
            sv = sv + np.asarray(ho.offset, dtype=np.float32)
        mapped = run_nodes(nodes, ho.tensor, sv.reshape(t.shape), consts, m.model.opset_import)
        host = mapped.reshape(len(t), -1)
        # Bit for bit when the tensor is exactly the integers' float32 image (as in tfc_2w2a);
        # else qonnx's own float32 rounding of the layer remains, and the tail must agree to it.
        exact = np.all(sv.reshape(flat.shape) == flat, axis=1)
        close = np.all(np.isclose(host, ref, rtol=1e-5, atol=1e-6), axis=1)
        same = np.where(exact, np.all(host == ref, axis=1), close)
        ints[~same] = np.iinfo(np.int64).min  # the tail does not reproduce qonnx's output
    if ho.final is not None:
        # Softmax and LogSoftmax are monotonic: the host's argmax of the logits must be one
        # of the (tied) maxima of qonnx's output; ArgMax outputs the first maximum's index,
        # as numpy's argmax does.
        pick = np.argmax(host, axis=1)
        if ho.final_op == "ArgMax":
            ok = y[:, 0].astype(np.int64) == pick
        else:
            ok = y[np.arange(len(y)), pick] == y.max(axis=1)
        ints[~ok] = np.iinfo(np.int64).min
    return x, ints


def to_grid(y: np.ndarray, g: Graph) -> np.ndarray:
    """Float outputs -> integers on the output scale; a value off the grid is itself a mismatch
    and is kept as a non-integer marker so the comparison fails."""
    return _exact_ints(y, 2.0 ** g.meta["output_exp"])
