"""The ``adder-graph`` kernel: a layer's whole constant matrix as one shift-and-add graph,
common subexpressions shared across rows, solved by alkaid's constant-matrix solver
(``alkaid.cmvm.cmvm_solve``, the maintained successor of da4ml; benchmarks/results/
cmvm_solvers.md says why it was chosen).

The solver returns stages of operations over a stage's inputs: an input (read with a shift),
or ``a + (b << k)`` / ``a - (b << k)`` with k possibly negative. Every value here is an
integer N at a power-of-two exponent e (value = N * 2**e); an operation aligns its operands
to the smaller exponent, so every shift emitted is a left shift of an integer and nothing is
rounded. A row's output is one node of the graph, shifted (a right shift only ever drops
zeros: the output is W x exactly) and possibly negated, plus the bias.

Zero removal, restated for this kernel: every node carries its exact linear form over the
inputs, and each row's form equals that row's nonzero weights exactly (checked here, for
every row), so no zero weight contributes an operator. A layer of at most
``WHOLE_LAYER_NONZEROS`` weights is solved whole, at the least depth and with the depth free,
and the cheaper solution that needs no more register banks is kept. Larger matrices are solved
in blocks of at most ``BLOCK`` inputs and ``NONZEROS_PER_BLOCK`` weights (the solver's time
grows fast with size), and the block outputs of a row are summed by a balanced tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hwprune.errors import HwpruneError
from hwprune.hw.csd import trailing_zeros
from hwprune.hw.netlist import DenseNetlist, Node
from hwprune.ir.graph import Dense, IntRange, Value

# numpy is imported where a matrix is solved: the kernel table imports this module, and the
# estimate of a mac design needs no numpy.
if TYPE_CHECKING:
    import numpy as np

# Inputs per solver call, and nonzero weights: the solver's time grows faster than the
# matrix. Measured on a 512x256 layer of 3-bit weights (2 shared cores): all nonzero, blocks
# of 64 inputs took 85 s, of 32 inputs 33 s (3.8 % more adders); 75 % zeros, 64 inputs 14 s.
BLOCK = 64
NONZEROS_PER_BLOCK = 8192
# A layer with at most this many nonzero weights is solved whole (sharing across all its
# inputs) and twice: at the least depth, and with the depth unbounded (fewer adders: tfc_2w2a's
# 64x784 layer, 15,720 weights, 6,221 adders at depth 9 in 7 s, 5,659 at depth 12 in 18 s);
# the deeper solution is kept when it needs no more register banks.
WHOLE_LAYER_NONZEROS = 16384
# Solves of fewer nonzero weights than this in all run in this process: starting workers
# (about 1 s each) would cost more than it saves.
PARALLEL_NONZEROS = 4096


class _Graph:
    """Nodes under construction, each with its exact linear form {column: coefficient}."""

    def __init__(self, x: Value) -> None:
        self.x = x
        self.nodes: list[Node] = []
        self.form: dict[str, dict[int, int]] = {}
        self.level: dict[str, int] = {}
        self.inputs: dict[int, Node] = {}
        self.offset: dict[str, int] = {}  # the constant part of each node's value

    def range_of(self, form: dict[int, int], offset: int = 0) -> IntRange:
        """The exact range of offset + sum(c * x[j]) over independent input ranges."""
        r = self.x.ranges
        lo = sum(c * (r[j].lo if c > 0 else r[j].hi) for j, c in form.items())
        hi = sum(c * (r[j].hi if c > 0 else r[j].lo) for j, c in form.items())
        return IntRange(lo + offset, hi + offset)

    def add(self, node: Node, form: dict[int, int], level: int, offset: int = 0) -> Node:
        self.nodes.append(node)
        self.form[node.name] = form
        self.level[node.name] = level
        self.offset[node.name] = offset
        return node

    def input(self, col: int) -> Node:
        name = f"x_{col}"
        if name not in self.form:
            self.inputs[col] = self.add(
                Node(name, "input", self.x.ranges[col], col=col), {col: 1}, 0
            )
        return self.inputs[col]

    def shiftadd(self, name: str, a: Node, sa: int, b: Node, sb: int, sub: bool, row=-1) -> Node:
        """(a << sa) + (b << sb), or minus, with sa, sb >= 0."""
        sign = -1 if sub else 1
        form = {j: c << sa for j, c in self.form[a.name].items()}
        for j, c in self.form[b.name].items():
            v = form.get(j, 0) + sign * (c << sb)
            if v:
                form[j] = v
            else:
                form.pop(j, None)
        tz = min(a.tz + sa, b.tz + sb)
        lvl = 1 + max(self.level[a.name], self.level[b.name])
        off = (self.offset[a.name] << sa) + sign * (self.offset[b.name] << sb)
        rng = self.range_of(form, off)
        n = Node(name, "shiftadd", rng, tz, (a.name, b.name), row=row, shifts=(sa, sb), sub=sub)
        return self.add(n, form, lvl, off)

    def shift(self, name: str, a: Node, k: int, row: int) -> Node:
        """a * 2**k (k < 0 drops low bits the form says are zero)."""
        form = {j: (c << k if k >= 0 else c >> -k) for j, c in self.form[a.name].items()}
        if k < 0:
            assert all(c % (1 << -k) == 0 for c in self.form[a.name].values()), name
        tz = max(0, a.tz + k)
        n = Node(name, "shift", self.range_of(form), tz, (a.name,), row=row, shifts=(k,))
        return self.add(n, form, self.level[a.name])


def _solve_all(tasks: list[tuple[np.ndarray, list[IntRange], bool]]) -> list:
    """alkaid's solution of each (w, input ranges, least depth) task, in order.

    The solver holds the GIL, so with more than one task, more than one core and enough
    weights, the tasks are shared among worker processes, each a fresh ``python -m
    hwprune.hw.adder_graph`` reading its tasks and writing the solutions as pickles (the same
    solutions: measured 2x faster on 2 cores). Fresh processes, not forks: a fork of a
    process whose thread pools the solver or torch started can hang, and multiprocessing's
    spawn would run a user's script without a main guard again.
    """
    import os

    import numpy as np

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    work = sum(int(np.count_nonzero(w)) for w, _, _ in tasks)
    if len(tasks) < 2 or cores < 2 or work < PARALLEL_NONZEROS:
        return [_solve(*t) for t in tasks]
    import pickle
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    n = min(cores, len(tasks))
    shares = [list(range(k, len(tasks), n)) for k in range(n)]
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}

    def run(share: list[int]) -> list:
        cmd = [sys.executable, "-m", "hwprune.hw.adder_graph"]
        data = pickle.dumps([tasks[i] for i in share])
        r = subprocess.run(cmd, input=data, capture_output=True, env=env, check=False)
        if r.returncode != 0:
            err = r.stderr.decode(errors="replace").strip().splitlines()
            raise HwpruneError(f"the adder-graph solver failed: {err[-1] if err else r.returncode}")
        return pickle.loads(r.stdout)

    out: list = [None] * len(tasks)
    with ThreadPoolExecutor(n) as ex:  # threads only wait for the processes
        for share, sols in zip(shares, ex.map(run, shares), strict=True):
            for i, sol in zip(share, sols, strict=True):
                out[i] = sol
    return out


def _solve(w: np.ndarray, ranges: list[IntRange], least_depth: bool = True):
    """alkaid's solution for y = w @ x (w: rows x inputs; ``ranges``: each input's range)."""
    import numpy as np
    from alkaid.cmvm import cmvm_solve

    qint = [(float(r.lo), float(r.hi), 1.0) for r in ranges]
    kernel = np.ascontiguousarray(w.T.astype(np.float32))
    # hard_dc=0: the least adder depth the matrix allows, so the layer's latency matches mac's;
    # search_all_decompose_dc=False: 3-10x faster, same adders at that depth (measured on
    # tfc_2w2a). hard_dc=-1 leaves the depth free, with alkaid's full search.
    if least_depth:
        return list(cmvm_solve(kernel, qintervals=qint, hard_dc=0, search_all_decompose_dc=False))
    return list(cmvm_solve(kernel, qintervals=qint, hard_dc=-1, search_all_decompose_dc=True))


def _depth(stages) -> int:
    """Adder levels of a solution: the longest chain of operations from an input."""
    depth: list[int] = []
    for stage in stages:
        local = []
        for op in stage.ops:
            if op.opcode == -1:
                local.append(depth[op.data[0]] if depth else 0)
            else:
                local.append(1 + max(local[op.addr[0]], local[op.addr[1]]))
        depth = [local[i] if i >= 0 else 0 for i in stage.out_idxs]
    return max(depth, default=0)


def _walk(gr: _Graph, stages, cols: list[int], tag: str) -> list[tuple[Node | None, int, bool]]:
    """Add the solution's operations to ``gr``; return per output (node, exponent, negated):
    output = (-1)**negated * node * 2**exponent, or None for a zero output."""
    # Each stage input: (node, exponent, negated) of the value it reads.
    feeds = [(gr.input(c), 0, False) for c in cols]
    count = 0
    for stage in stages:
        local: list[tuple[Node, int, bool]] = []
        for op in stage.ops:
            if op.opcode == -1:
                node, e, neg = feeds[op.data[0]]
                local.append((node, e + int(stage.inp_shifts[op.data[0]]), neg))
                continue
            if op.opcode not in (0, 1):
                raise HwpruneError(f"alkaid returned operation code {op.opcode}, not an add")
            (a, ea, na), (b, eb, nb) = local[op.addr[0]], local[op.addr[1]]
            eb += int(op.data[0])
            sub = (op.opcode == 1) ^ na ^ nb  # the result carries a's sign
            e = min(ea, eb)
            node = gr.shiftadd(f"g{tag}_{count}", a, ea - e, b, eb - e, sub)
            count += 1
            local.append((node, e, na))
        outs = []
        for idx, sh, neg in zip(stage.out_idxs, stage.out_shifts, stage.out_negs, strict=True):
            if idx < 0:
                outs.append((None, 0, False))
            else:
                node, e, n0 = local[idx]
                outs.append((node, e + int(sh), bool(n0) ^ bool(neg)))
        feeds = outs
    return feeds


def lower_adder_graph(op: Dense, x: Value, per_stage: int) -> DenseNetlist:
    """The netlist of Dense ``op``: the solver's shared shift-and-add graph per block of
    inputs, each row's block outputs summed, the bias added, pipelined every ``per_stage``
    adder levels (0: one bank per layer)."""
    # An input whose range is {0} contributes nothing whatever its weight: the solver drops
    # it, and so does the check below.
    import numpy as np

    cols = sorted({c for row in op.rows for c in row.cols if x.ranges[c] != IntRange(0, 0)})
    w_full = np.zeros((op.n_out, op.n_in), dtype=np.int64)
    for i, row in enumerate(op.rows):
        w_full[i, list(row.cols)] = row.weights
    nonzeros = np.count_nonzero(w_full, axis=0)
    nz = int(nonzeros.sum())
    if nz > WHOLE_LAYER_NONZEROS:
        blocks = _blocks(cols, nonzeros)
        sols = _solve_all([(w_full[:, bc], [x.ranges[c] for c in bc], True) for bc in blocks])
        how = (
            f"split: {nz:,} nonzero weights > {WHOLE_LAYER_NONZEROS:,}, so {len(blocks)} blocks "
            f"of <= {BLOCK} inputs and <= {NONZEROS_PER_BLOCK:,} weights, each at least depth "
            "(hard_dc=0, one decomposition), block outputs summed per row"
        )
        return _netlist(op, x, per_stage, cols, blocks, sols, how)
    w = w_full[:, cols]
    ranges = [x.ranges[c] for c in cols]
    sol_least, sol_free = _solve_all([(w, ranges, True), (w, ranges, False)])
    whole = f"whole matrix ({nz:,} nonzero weights <= {WHOLE_LAYER_NONZEROS:,})"
    least = _netlist(
        op, x, per_stage, cols, [cols], [sol_least], f"{whole}, least depth (hard_dc=0)"
    )
    free = _netlist(
        op,
        x,
        per_stage,
        cols,
        [cols],
        [sol_free],
        f"{whole}, depth free (hard_dc=-1, full search): fewer adders, no more register banks",
    )
    # The deeper solution only when it saves adders and needs no more register banks.
    fewer = len(free.nodes) - len(free.of_kind("reg")) < len(least.nodes) - len(
        least.of_kind("reg")
    )
    return free if fewer and len(free.bank_levels) <= len(least.bank_levels) else least


def _netlist(
    op: Dense, x: Value, per_stage: int, cols, blocks, solutions, solve: str
) -> DenseNetlist:
    """The netlist from one solution per block of input columns."""
    from hwprune.hw.pipeline import pipeline

    gr = _Graph(x)
    per_row: list[list[tuple[Node, bool]]] = [[] for _ in op.rows]
    for bi, (bcols, sol) in enumerate(zip(blocks, solutions, strict=True)):
        outs = _walk(gr, sol, bcols, f"{bi}")
        for i, (node, e, neg) in enumerate(outs):
            if node is None:
                continue
            if e != 0:
                node = gr.shift(f"t{bi}_{i}", node, e, i)
            per_row[i].append((node, neg))  # a negated output is subtracted in the row's sum
    tops = []
    for i, row in enumerate(op.rows):
        tops.append(_row_sum(gr, i, row.bias, per_row[i]))
    for i, row in enumerate(op.rows):  # zero removal, restated: the forms are the weights
        kept = set(cols)
        want = {c: w for c, w in zip(row.cols, row.weights, strict=True) if c in kept}
        if gr.form[tops[i].name] != want or gr.offset[tops[i].name] != row.bias:
            raise AssertionError(f"adder graph of {op.name} row {i} computes another row")
    return pipeline(op.name, "adder-graph", tuple(cols), gr.nodes, tops, gr.level, per_stage, solve)


def _blocks(cols: list[int], nonzeros: np.ndarray) -> list[list[int]]:
    """Consecutive input columns, at most BLOCK of them and NONZEROS_PER_BLOCK weights."""
    blocks: list[list[int]] = []
    cur: list[int] = []
    nz = 0
    for c in cols:
        if cur and (len(cur) == BLOCK or nz + nonzeros[c] > NONZEROS_PER_BLOCK):
            blocks.append(cur)
            cur, nz = [], 0
        cur.append(c)
        nz += int(nonzeros[c])
    return blocks + ([cur] if cur else [])


def _row_sum(gr: _Graph, i: int, bias: int, terms: list[tuple[Node, bool]]) -> Node:
    """bias + the row's signed block outputs (node, negated), by a balanced tree of
    shift-adds."""
    signed = list(terms)
    if bias != 0 or not signed:
        c = Node(f"b_{i}", "const", IntRange(bias, bias), trailing_zeros(bias), value=bias, row=i)
        gr.add(c, {}, 0, bias)
        signed.insert(0, (c, False))
    level = 0
    while len(signed) > 1:
        level += 1
        nxt = []
        for k in range(0, len(signed) - 1, 2):
            (a, na), (b, nb) = signed[k], signed[k + 1]
            if na and not nb:  # -a + b = b - a
                (a, na), (b, nb) = (b, nb), (a, na)
            s = gr.shiftadd(f"y_{i}_{level}_{k // 2}", a, 0, b, 0, na ^ nb, row=i)
            nxt.append((s, na))
        if len(signed) % 2:
            nxt.append(signed[-1])
        signed = nxt
    ((top, neg),) = signed
    if neg:  # only a negative term and nothing to subtract it from
        zero = Node(f"z_{i}", "const", IntRange(0, 0), row=i)
        gr.add(zero, {}, 0)
        top = gr.shiftadd(f"y_{i}_neg", zero, 0, top, 0, True, row=i)
    return top


if __name__ == "__main__":  # a worker of _solve_all: pickled tasks in, solutions out
    import pickle
    import sys

    _tasks = pickle.load(sys.stdin.buffer)
    pickle.dump([_solve(*t) for t in _tasks], sys.stdout.buffer)
