"""Streaming lowering: the convolutional front of a network as one window kernel per layer,
fed one pixel per cycle through line buffers, instead of one adder tree per output pixel.

A stream stage is a sliding-window op (a convolution or an average pooling as a Dense with a
``Window``, a max pooling as a Max with one) and the elementwise ops after it (Requant,
Threshold), which act per pixel. Its *kernel* is a small graph of its own: the input is the
window (every tap's pixel, and when the bias depends on the position a bit per tap saying
whether the tap is a real pixel or padding), and one Dense row or Max window per output
channel. The kernel is read back from the layer's rows and every row is checked against it,
so a stream stage computes exactly the elements the unrolled layer does; the rows stay the
truth (``Window``). ``stages`` finds the stream stages at the front of a chain graph.

Why the flag bit: a filter the passes removed (pruned to zero, its output a constant) is
folded into the next layer's bias, and where that layer's window reads padding the folded
amount is smaller; the bias then depends on the position only through which taps are real,
``bias(p) = b0 + sum of K[t] over the real taps t``, which the flag terms compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from hwprune.hw.reuse import kernel_cycles, reuse_of
from hwprune.ir.graph import (
    Dense,
    Graph,
    Input,
    IntRange,
    Max,
    Op,
    Requant,
    Row,
    Threshold,
    Value,
    Window,
    verify,
)


class NotStreamable(Exception):
    """A layer that cannot stream, with the reason in words (the message)."""


@dataclass(frozen=True)
class PixelMap:
    """Where the elements of a map value sit: ``index[(c * H + y) * W + x]`` is the element
    at (c, y, x), -1 where there is none. ``channels`` are the channels a pixel carries (those
    with an element somewhere), in order."""

    shape: tuple[int, int, int]
    index: tuple[int, ...]

    @cached_property
    def channels(self) -> tuple[int, ...]:
        c, h, w = self.shape
        return tuple(ch for ch in range(c) if any(i >= 0 for i in self._plane(ch)))

    def _plane(self, ch: int) -> tuple[int, ...]:
        _, h, w = self.shape
        return self.index[ch * h * w : (ch + 1) * h * w]

    def at(self, c: int, y: int, x: int) -> int:
        _, h, w = self.shape
        return self.index[(c * h + y) * w + x]


@dataclass(frozen=True)
class Stage:
    """One stream stage: ``ops`` (the window op, then the elementwise ops fused into it),
    its window, the pixels it reads and writes, and its per-pixel ``kernel`` graph.

    The kernel's input is the window vector: element ``t * len(in_map.channels) + j`` is
    channel ``in_map.channels[j]`` of tap t (taps row-major over the kernel), then, when
    ``flag`` is set, one bit per tap (1: a real pixel, 0: padding) at ``n_taps * n_ch + t``.
    Its output element k is channel ``out_map.channels[k]`` of the output pixel. Padding
    reads as ``pad`` (0 for a convolution, the smallest pixel value for a max pooling).
    """

    ops: tuple[str, ...]
    window: Window
    in_map: PixelMap
    out_map: PixelMap
    kernel: Graph
    flag: bool
    pad: int

    @property
    def name(self) -> str:
        return self.ops[0]

    @property
    def n_taps(self) -> int:
        return self.window.kernel[0] * self.window.kernel[1]

    @property
    def grid(self) -> tuple[int, int]:
        """Rows and columns of the padded input grid the stage walks."""
        w = self.window
        _, h, wd = w.in_shape
        return h + w.pads[0] + w.pads[2], wd + w.pads[1] + w.pads[3]

    @property
    def taps(self) -> tuple[int, ...]:
        """Per tap (row-major over the kernel), its position in the window's shift register:
        the newest pixel is at 0 and completes the window as its bottom-right tap, so tap
        (dy, dx) lies (kh-1-dy) dilated padded rows and (kw-1-dx) dilated columns back. The
        register spans ``taps[0] + 1`` pixels."""
        (kh, kw), (dh, dw) = self.window.kernel, self.window.dilations
        wp = self.grid[1]
        return tuple(
            (kh - 1 - dy) * dh * wp + (kw - 1 - dx) * dw for dy in range(kh) for dx in range(kw)
        )


def _taps(w: Window, oy: int, ox: int):
    """(tap index, input y, input x, in bounds) of every tap of output position (oy, ox)."""
    _, h, wd = w.in_shape
    (kh, kw), (sh, sw), (dh, dw) = w.kernel, w.strides, w.dilations
    pt, pl = w.pads[0], w.pads[1]
    for dy in range(kh):
        for dx in range(kw):
            y, x = oy * sh - pt + dy * dh, ox * sw - pl + dx * dw
            yield dy * kw + dx, y, x, 0 <= y < h and 0 <= x < wd


def _in_map(w: Window) -> PixelMap:
    return PixelMap(w.in_shape, w.in_index)


def _out_map(w: Window) -> PixelMap:
    return PixelMap(w.out_shape, w.out_index)


def _group_channels(w: Window, f: int) -> range:
    c, fo = w.in_shape[0], w.out_shape[0]
    cg = c // w.groups
    g0 = (f // (fo // w.groups)) * cg
    return range(g0, g0 + cg)


def _positions(w: Window):
    _, oh, ow = w.out_shape
    for oy in range(oh):
        for ox in range(ow):
            yield oy, ox


def dense_kernel(op: Dense) -> tuple[dict, dict, dict]:
    """The kernel of a windowed Dense, read back from its rows and checked against every row.

    Returns ``(weights, bias, flags)``: weights[(f, c, t)] != 0 for filter f, input channel
    c, tap t; bias[f] the bias where every tap is real; flags[(f, t)] the amount tap t adds
    to filter f's bias when it is a real pixel (empty unless the bias depends on the
    position). Raises NotStreamable when the rows are not one kernel slid over the map.
    """
    w = op.window
    assert w is not None
    inm = _in_map(w)
    kept = set(inm.channels)
    consts = dict(w.consts)
    _, h, wd = w.in_shape
    weights: dict[tuple[int, int, int], int] = {}
    # Pass 1: every term of every row names an element under its window; read the kernel.
    for f, oy, ox, row in _placed_rows(op):
        terms = dict(zip(row.cols, row.weights))
        for t, y, x, inside in _taps(w, oy, ox):
            for c in _group_channels(w, f) if inside else ():
                e = inm.at(c, y, x)
                if e < 0:
                    continue
                v = terms.pop(e, 0)
                if weights.setdefault((f, c, t), v) != v:
                    raise NotStreamable(
                        f"{op.name}: filter {f} weighs channel {c} at tap {t} by "
                        f"{weights[(f, c, t)]} at one position and {v} at ({oy}, {ox})"
                    )
        if terms:
            raise NotStreamable(f"{op.name}: output ({f}, {oy}, {ox}) reads outside its window")
    weights = {k: v for k, v in weights.items() if v != 0}
    # Pass 2: a tap on a kept channel whose element the passes removed here was folded as a
    # constant into this row's bias (``Window.consts``); the kernel counts it from the stream,
    # so the bias gives it back. The real-tap pattern of each row goes with its bias.
    biases: dict[int, list[tuple[tuple[int, ...], int]]] = {}
    for f, oy, ox, row in _placed_rows(op):
        bias, real = row.bias, []
        for t, y, x, inside in _taps(w, oy, ox):
            real.append(int(inside))
            for c in _group_channels(w, f) if inside else ():
                if inm.at(c, y, x) >= 0 or c not in kept or (f, c, t) not in weights:
                    continue
                q = (c * h + y) * wd + x
                if q not in consts:
                    raise NotStreamable(f"{op.name}: input ({c}, {y}, {x}) is missing")
                bias -= weights[(f, c, t)] * consts[q]
        biases.setdefault(f, []).append((tuple(real), bias))
    bias, flags = {}, {}
    for f, eqs in biases.items():
        b0, fl = _solve_bias(op.name, f, eqs)
        bias[f] = b0
        flags.update({(f, t): v for t, v in fl.items() if v != 0})
    return weights, bias, flags


def _placed_rows(op: Dense):
    """(f, oy, ox, row) of every row the window places."""
    w = op.window
    for f in range(w.out_shape[0]):
        for oy, ox in _positions(w):
            r = _out_map(w).at(f, oy, ox)
            if r >= 0:
                yield f, oy, ox, op.rows[r]


def _solve_bias(name: str, f: int, eqs: list[tuple[tuple[int, ...], int]]):
    """b0 and per-tap amounts K with bias = b0 + sum(K[t] for real taps t), exactly, from
    (real-tap pattern, bias) pairs; raises NotStreamable if none exists."""
    patterns = {}
    for real, b in eqs:
        if patterns.setdefault(real, b) != b:
            raise NotStreamable(f"{name}: filter {f} has two biases at like positions")
    n = len(eqs[0][0])
    if len(set(patterns.values())) == 1:
        return next(iter(patterns.values())), {}
    # Gaussian elimination over the rationals on the taps that are ever padding.
    var = [t for t in range(n) if any(p[t] == 0 for p in patterns)]
    rows = [[Fraction(1), *(Fraction(p[t]) for t in var), Fraction(b)] for p, b in patterns.items()]
    m = len(var) + 1
    piv_cols, r = [], 0
    for col in range(m):
        piv = next((i for i in range(r, len(rows)) if rows[i][col] != 0), None)
        if piv is None:
            continue
        rows[r], rows[piv] = rows[piv], rows[r]
        rows[r] = [v / rows[r][col] for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col] != 0:
                k = rows[i][col]
                rows[i] = [a - k * b for a, b in zip(rows[i], rows[r])]
        piv_cols.append(col)
        r += 1
    if any(all(v == 0 for v in row[:-1]) and row[-1] != 0 for row in rows):
        raise NotStreamable(f"{name}: filter {f}'s bias is not a sum over real taps")
    sol = [Fraction(0)] * m
    for i, col in enumerate(piv_cols):
        sol[col] = rows[i][-1]  # free variables at 0
    if any(v.denominator != 1 for v in sol):
        raise NotStreamable(f"{name}: filter {f}'s bias is not an integer sum over real taps")
    b0 = int(sol[0])
    amounts = {t: int(v) for t, v in zip(var, sol[1:])}
    for p, b in patterns.items():  # the exact check of the solution
        if b0 + sum(amounts[t] for t in var if p[t]) != b:
            raise NotStreamable(f"{name}: filter {f}'s bias is not a sum over real taps")
    return b0, amounts


def _max_kernel(op: Max) -> None:
    """Check a windowed Max is one window slid over the map (its padding is left out of the
    windows; the stream pads with the smallest value a pixel holds, which no max picks over
    a real member)."""
    w = op.window
    assert w is not None
    inm, outm = _in_map(w), _out_map(w)
    for f in range(w.out_shape[0]):
        for oy, ox in _positions(w):
            r = outm.at(f, oy, ox)
            if r < 0:
                continue
            want = sorted(inm.at(f, y, x) for _, y, x, inside in _taps(w, oy, ox) if inside)
            if list(op.groups[r]) != want:
                raise NotStreamable(
                    f"{op.name}: output ({f}, {oy}, {ox}) is not the max of its window"
                )


def _pixel_range(v: Value, m: PixelMap) -> IntRange:
    """One range holding every element of the map (what one pixel bus must carry)."""
    rs = [v.ranges[i] for i in m.index if i >= 0]
    out = rs[0]
    for r in rs[1:]:
        out = out.union(r)
    return out


def _channel_thresholds(op: Threshold, v: Value, m: PixelMap) -> tuple[tuple[int, ...], ...]:
    """One threshold list per pixel channel, that counts as each position's own list on that
    position's input range (the importer clips thresholds to an element's range, so the lists
    of one channel differ where the ranges do); raises NotStreamable if there is none."""
    _, h, w = m.shape
    out = []
    for ch in m.channels:
        elems = [i for i in m.index[ch * h * w : (ch + 1) * h * w] if i >= 0]
        widest = max(elems, key=lambda i: v.ranges[i].hi - v.ranges[i].lo)
        cand = op.thresholds[widest]
        for i in elems:
            r = v.ranges[i]
            if _clipped(cand, r) != _clipped(op.thresholds[i], r):
                raise NotStreamable(f"{op.name}: channel {ch}'s thresholds differ by position")
        out.append(cand)
    return tuple(out)


def _clipped(ts: tuple[int, ...], r: IntRange) -> list[int]:
    """Thresholds as seen from inputs in r: one at or below r.lo always counts (it becomes
    r.lo), one above r.hi never does (it goes); two lists count alike on r exactly when
    these are equal."""
    return sorted(max(t, r.lo) for t in ts if t <= r.hi)


WINDOW = "window"  # the name of a kernel graph's input


def _kernel(g: Graph, op: Dense | Max, tail: tuple[Op, ...]) -> tuple[Graph, bool, int]:
    """The per-pixel kernel graph of a stage (see ``Stage``), whether it reads flags, and
    the value padding reads as."""
    w = op.window
    assert w is not None
    inm, outm = _in_map(w), _out_map(w)
    in_ch, out_ch = inm.channels, outm.channels
    nc, n_taps = len(in_ch), w.kernel[0] * w.kernel[1]
    pos = {c: j for j, c in enumerate(in_ch)}
    x = g.values[op.inputs[0]]
    rng = _pixel_range(x, inm)
    pad = 0 if isinstance(op, Dense) else rng.lo
    if any(w.pads):
        rng = rng.union(IntRange(pad, pad))
    if isinstance(op, Dense):
        weights, bias, flags = dense_kernel(op)
        flag = bool(flags)
        rows = []
        for f in out_ch:
            terms = [(t * nc + pos[c], v) for (f2, c, t), v in weights.items() if f2 == f]
            terms += [(n_taps * nc + t, v) for (f2, t), v in flags.items() if f2 == f]
            terms.sort()
            rows.append(Row(bias[f], tuple(c for c, _ in terms), tuple(v for _, v in terms)))
        n_in = n_taps * nc + (n_taps if flag else 0)
        if flag:
            rng = rng.union(IntRange(0, 1))
        first: Op = Dense(op.name, (WINDOW,), n_in, tuple(rows), op.w_exp)
    else:
        _max_kernel(op)
        flag, n_in = False, n_taps * nc
        groups = tuple(tuple(t * nc + pos[f] for t in range(n_taps)) for f in out_ch)
        first = Max(op.name, (WINDOW,), groups)
    ops: list[Op] = [Input(WINDOW, (), n_in, rng, x.exp), first]
    for e in tail:
        if isinstance(e, Threshold):
            ts = _channel_thresholds(e, g.values[e.inputs[0]], outm)
            e = Threshold(e.name, e.inputs, ts, e.base, e.step, e.exp)
        ops.append(e)
    kernel = Graph(tuple(ops), (ops[-1].name,), g.meta)
    verify(kernel)
    return kernel, flag, pad


def _windowed(op: Op) -> bool:
    return isinstance(op, (Dense, Max)) and op.window is not None


def stages(g: Graph, upto: int | None = None) -> tuple[tuple[Stage, ...], str]:
    """The stream stages at the front of chain graph ``g`` (at most ``upto`` of them), and in
    words why the next layer does not stream ("" when every layer does)."""
    (inp,) = (op for op in g.ops if isinstance(op, Input))
    chain = [op for op in g.ops if not isinstance(op, Input)]
    out: list[Stage] = []
    prev, prev_map = inp.name, None
    i = 0
    while i < len(chain):
        op = chain[i]
        if upto is not None and len(out) >= upto:
            return tuple(out), f"{op.name}: unrolled as asked"
        if not _windowed(op):
            return tuple(out), f"{op.name}: not a convolution or pooling"
        if op.inputs != (prev,):
            return tuple(out), f"{op.name}: does not read the layer before it"
        w = op.window
        inm = _in_map(w)
        if prev_map is not None and prev_map != inm:
            return tuple(out), f"{op.name}: reads its map in another order (a Transpose?)"
        j = i + 1
        while j < len(chain) and isinstance(chain[j], (Requant, Threshold)):
            j += 1
        tail = tuple(chain[i + 1 : j])
        try:
            kernel, flag, pad = _kernel(g, op, tail)
        except NotStreamable as e:
            return tuple(out), str(e)
        names = (op.name, *(t.name for t in tail))
        out.append(Stage(names, w, inm, _out_map(w), kernel, flag, pad))
        prev, prev_map = names[-1], _out_map(w)
        i = j
    return tuple(out), ""


def pixels(m: PixelMap, x):
    """The pixel stream of a batch of map values ``x`` (batch, size): (batch, H, W, channels),
    raster order; a channel's element the passes removed at some position reads 0."""
    import numpy as np  # here: planning a stream (the estimate) needs no numpy

    c, h, w = m.shape
    idx = np.array(m.index, dtype=np.int64).reshape(c, h, w)[list(m.channels)]
    vals = np.where(idx >= 0, x[:, np.maximum(idx, 0)], 0)  # (batch, nc, h, w)
    return vals.transpose(0, 2, 3, 1)


def window_vectors(st: Stage, px):
    """The kernel input of every output position, from input pixels ``px`` (batch, H, W, nc):
    (batch, OH, OW, kernel inputs), padding read as ``st.pad`` (and its flag as 0)."""
    import numpy as np

    w = st.window
    _, oh, ow = w.out_shape
    b, h, wd, nc = px.shape
    out = np.full((b, oh, ow, st.kernel.inputs[0].size), st.pad, dtype=np.int64)
    if st.flag:
        out[..., st.n_taps * nc :] = 0
    for oy in range(oh):
        for ox in range(ow):
            for t, y, x, inside in _taps(w, oy, ox):
                if inside:
                    out[:, oy, ox, t * nc : (t + 1) * nc] = px[:, y, x]
                    if st.flag:
                        out[:, oy, ox, st.n_taps * nc + t] = 1
    return out


def head(g: Graph, stages: tuple[Stage, ...]) -> Graph:
    """The part of ``g`` after its stream stages, as a graph of its own: its input is the map
    the last stage writes, one vector per image (each element in one range, the union of the
    map's: the collector's bus), and it may have no ops (the network ends with the stream)."""
    last = stages[-1].ops[-1]
    v = g.values[last]
    inp = Input(last, (), v.size, v.range, v.exp)
    rest = tuple(op for op in g.ops[g.ops.index(g.op(last)) + 1 :])
    return Graph((inp, *rest), g.outputs, g.meta, g.host_input, g.host_output)


def _grid(st: Stage):
    """The stage's padded grid: (rows, cols, pad(py, px), window-complete(py, px))."""
    w = st.window
    _, h, wd = w.in_shape
    _, oh, ow = w.out_shape
    (kh, kw), (sh, sw), (dh, dw) = w.kernel, w.strides, w.dilations
    pt, pl = w.pads[0], w.pads[1]
    y0, x0 = (kh - 1) * dh, (kw - 1) * dw

    def pad(py: int, px: int) -> bool:
        return not (pt <= py < pt + h and pl <= px < pl + wd)

    def done(py: int, px: int) -> bool:
        return (
            py >= y0
            and (py - y0) % sh == 0
            and (py - y0) // sh < oh
            and px >= x0
            and (px - x0) % sw == 0
            and (px - x0) // sw < ow
        )

    return (*st.grid, pad, done)


def timing(
    stages: tuple[Stage, ...],
    kernel_cycles: list[int],
    head_cycles: int,
    images: int = 3,
    reuse: int = 1,
):
    """Cycle by cycle, the stream's control as ``codegen.stream`` builds it, fed ``images``
    images back to back at one pixel per cycle (each stage at most one grid position per
    ``reuse`` enabled cycles): (latency, interval, first, out), the cycles
    from an image's first pixel accepted to its result (image 0), between two results (the
    last two), and the cycle each image's first pixel went in and its result came out."""
    grids = [_grid(st) for st in stages]
    n = len(stages)
    npix = stages[0].window.in_shape[1] * stages[0].window.in_shape[2]
    _, oh, ow = stages[-1].window.out_shape
    last_pix = oh * ow
    pos = [[0, 0] for _ in stages]
    busy = [0] * n  # enabled cycles a stage still waits before its next position
    wv = [False] * n
    vp = [[False] * c for c in kernel_cycles]
    ppos, hv = 0, False
    hp = [False] * head_cycles
    sent, first, out = 0, [], []
    t = 0
    while len(out) < images:
        if t > 10_000_000:
            raise AssertionError("the stream model does not finish")
        pads = [g[2](*p) for g, p in zip(grids, pos)]
        en = [True] * n  # a stage holds while its pixel out waits for the next stage
        for k in range(n - 2, -1, -1):
            ready = en[k + 1] and not pads[k + 1] and busy[k + 1] == 0
            en[k] = not vp[k][-1] or ready
        valid_in = [sent < images * npix] + [vp[k][-1] for k in range(n - 1)]
        adv = [en[k] and busy[k] == 0 and (pads[k] or valid_in[k]) for k in range(n)]
        if adv[0] and not pads[0]:
            if sent % npix == 0:
                first.append(t)
            sent += 1
        if (hp[-1] if head_cycles else hv) and t > 0:
            out.append(t)
        # the registers
        last_valid = vp[-1][-1]
        new_hv = last_valid and ppos == last_pix - 1
        if last_valid:
            ppos = 0 if ppos == last_pix - 1 else ppos + 1
        if head_cycles:
            hp = [hv, *hp[:-1]]
        hv = new_hv
        for k in range(n):
            if not en[k]:
                continue
            vp[k] = [wv[k], *vp[k][:-1]]
            wv[k] = adv[k] and grids[k][3](*pos[k])
            busy[k] = reuse - 1 if adv[k] else max(busy[k] - 1, 0)
            if adv[k]:
                rows, cols = grids[k][0], grids[k][1]
                py, px = pos[k]
                pos[k] = [(py + 1) % rows if px == cols - 1 else py, (px + 1) % cols]
        t += 1
    return out[0] - first[0], out[-1] - out[-2], first, out


@dataclass(frozen=True)
class Plan:
    """A streaming design: its stages, the head after them (``head``), the register banks
    of each stage's kernel and of the head, and the timing the control gives (``timing``):
    cycles from an image's first pixel in to its result out, and between two results when
    images come back to back."""

    stages: tuple[Stage, ...]
    head: Graph
    kernel_cycles: tuple[int, ...]
    head_cycles: int
    latency: int
    interval: int
    reuse: int = 1  # a stage takes at most one grid position per this many cycles

    @property
    def n_pixels(self) -> int:
        _, h, w = self.stages[0].window.in_shape
        return h * w


STREAM_KEY = "stream_stages"  # meta: how many layers at the front stream (absent: none)


def plan(g: Graph) -> Plan | None:
    """The streaming design of a compiled graph (``meta[STREAM_KEY]`` stages), or None."""
    n = g.meta.get(STREAM_KEY)
    if not n:
        return None
    st, why = stages(g, n)
    if len(st) != n:
        raise NotStreamable(why)
    hd = head(g, st)
    reuse = reuse_of(g)
    kc = tuple(kernel_cycles(s.kernel) for s in st)
    hc = kernel_cycles(hd) if len(hd.ops) > 1 else 0
    latency, interval, _, _ = timing(st, list(kc), hc, reuse=reuse)
    return Plan(st, hd, kc, hc, latency, interval, reuse)
