"""rtl/manifest.json: what the emitted code holds, per layer, against what the model held.

The manifest is the checkable form of "zero-weight multipliers removed": per Dense layer the
product terms of the emitted Verilog and HLS C++ equal the compiled nonzero weights.
"""

from __future__ import annotations

from hwprune.hw.csd import csd_digits
from hwprune.hw.kernels import kernel_of, lower_dense
from hwprune.hw.netlist import DenseNetlist
from hwprune.hw.reuse import shared_dense, shared_layer
from hwprune.hw.schedule import latency_cycles
from hwprune.hw.stream import plan
from hwprune.ir.graph import Graph
from hwprune.ir.passes import unread_inputs
from hwprune.names import TOP


def _solve(net: DenseNetlist) -> dict:
    """How a solver's kernel solved the layer (whole or split, its bounds), when one did."""
    return {"solve": net.solve} if net.solve else {}


def manifest(imported: Graph, g: Graph, verilog_terms: dict, hls_terms: dict) -> dict:
    """Per Dense layer: the layer's own weights and nonzeros (a convolution's kernel, counted
    once), the product terms it lowers to, what the passes removed, and the product terms of
    the emitted Verilog and HLS C++ (which must equal ``nonzero_weights``, the compiled terms)."""
    layers = []
    compiled = {op.name: op for op in g.dense_ops()}
    kernels = imported.meta.get("layers", {})
    p = plan(g)
    streamed = {} if p is None else {n: st for st in p.stages for n in st.ops}
    for op in imported.dense_ops():
        new = compiled[op.name]
        k = kernels.get(op.name, {})
        if (src := _folded_into(g, op.name)) is not None:
            k = {**k, "requant": f"{src} folded in (multiply-add-shift-clip)"}
        # A streamed layer is one kernel: its product terms are the kernel's (flag terms:
        # the position-dependent bias of a folded constant, hw.stream).
        kg, kop = g, new
        if op.name in streamed:
            kg = streamed[op.name].kernel
            kop = kg.op(op.name)
        layers.append(
            {
                "name": op.name,
                "kind": k.get("kind", "linear"),
                "weights": k.get("kernel_weights", op.n_in * op.n_out),
                "kernel_nonzeros": k.get("kernel_nonzeros", op.n_terms),
                "positions": k.get("positions", 1),
                "nonzero_weights_imported": op.n_terms,
                "nonzero_weights": new.n_terms,
                "removed_neurons": op.n_out - new.n_out,
                "removed_inputs": op.n_in - new.n_in,
                "kernel": kernel_of(kg, kop),
                # the adders the kernel's netlist spends (products' own adders included)
                "adders": netlist_adders(lower_dense(kg, kop)),
                **_solve(lower_dense(kg, kop)),
                **(_stream_terms(streamed[op.name], kop, p) if op.name in streamed else {}),
                "product_terms_verilog": verilog_terms.get(op.name, 0),
                "product_terms_hls": hls_terms.get(op.name, 0),
                **({"requant": k["requant"]} if "requant" in k else {}),
            }
        )
    # A threshold layer built as a multiply-add: its own Dense, one term per element.
    known = {op.name for op in imported.dense_ops()}
    for new in g.dense_ops():
        if new.name in known:
            continue
        layers.append(
            {
                "name": new.name,
                "kind": "requant",
                "requant": f"{g.consumers(new.name)[0].name} as multiply-add-shift-clip",
                "weights": new.n_terms,
                "kernel_nonzeros": new.n_terms,
                "positions": 1,
                "nonzero_weights_imported": 0,
                "nonzero_weights": new.n_terms,
                "removed_neurons": 0,
                "removed_inputs": 0,
                "kernel": kernel_of(g, new),
                "adders": netlist_adders(lower_dense(g, new)),
                **_solve(lower_dense(g, new)),
                "product_terms_verilog": verilog_terms.get(new.name, 0),
                "product_terms_hls": hls_terms.get(new.name, 0),
            }
        )
    softmax = "none (raw accumulator outputs; argmax is taken outside)"
    ho = imported.host_output
    if ho:  # a float tail after the last layer: the host maps the hardware's integers
        tail = ", ".join(ho.tail) or "the scale only"
        off = " plus the layer's float bias (offset)" if ho.offset is not None else ""
        softmax = (
            f"none in hardware: outputs are the integers of tensor {ho.tensor!r}, which is "
            f"integers times its scale{off}; the host applies the model's float tail ({tail}); "
            "argmax is taken outside"
        )
        if ho.final is not None:
            softmax = (
                f"argmax taken outside the hardware (monotonic, so argmax of the integer logits "
                f"equals argmax of qonnx's {ho.final_op}); the hardware outputs the integers of "
                f"tensor {ho.tensor!r} (= integers * scale{off}, the logits; host tail: {tail})"
            )
    hi = imported.host_input
    host_in = (
        "none: the hardware reads the integer levels of the model's input quantizer"
        if hi is None
        else f"{hi.how}; the hardware input is tensor {hi.tensor!r} / {hi.scale!r}"
    )
    return {
        "top": TOP,
        "kernel": g.meta.get("kernel", "mac"),
        "pipeline": "layer" if g.meta.get("pipeline") == 0 else g.meta.get("pipeline", 4),
        "latency_cycles": latency_cycles(g) if p is None else p.latency,
        # conv stream: cycles between two images' results, images back to back
        **(
            {}
            if p is None
            else {"conv": "stream", "interval_cycles": p.interval, "reuse_factor": p.reuse}
        ),
        # auto: per layer, the estimated LUTs and FFs of each kernel, and which was cheaper
        "kernel_choice": g.meta.get("kernel_choice"),
        # per threshold layer: thresholds, multiply-add-shift-clip or folded, and the
        # estimated LUTs and FFs of the whole design with each form
        "requant_choice": g.meta.get("requant_choice"),
        "layers": layers,
        "unread_inputs": unread_inputs(g),
        "input": host_in,
        "input_type": None if hi is None else hi.input_type,
        "softmax": softmax,
    }


def _stream_terms(st, kop, p) -> dict:
    """A streamed layer's form and its kernel's terms (weights, and flag terms); at reuse
    factor R > 1 the multipliers its terms share (``hw.reuse``), each used R times."""
    flags = st.n_taps * len(st.in_map.channels) if st.flag else None
    n_flag = 0 if flags is None else sum(1 for r in kop.rows for c in r.cols if c >= flags)
    out = {"form": "stream", "stream_terms": kop.n_terms, "flag_terms": n_flag}
    if shared_dense(st.kernel) is not None:
        out |= {"reuse_factor": p.reuse, "multipliers": shared_layer(st.kernel, kop).multipliers}
    return out


def netlist_adders(net) -> int:
    """Adders and subtractors of a lowered layer: a mac product by w has (CSD digits of w)
    - 1 of them, every add or shift-add node is one."""
    n = 0
    for node in net.nodes:
        if node.kind == "product":
            n += len(csd_digits(node.value)) - 1
        elif node.kind in ("add", "shiftadd"):
            n += 1
    return n


def _folded_into(g: Graph, dense: str) -> str | None:
    """The threshold layer folded into Dense ``dense`` of ``g``, if any."""
    for name, c in g.meta.get("requant_choice", {}).items():
        if c["form"] == "folded" and g.op(name).inputs == (dense,):
            return name
    return None
