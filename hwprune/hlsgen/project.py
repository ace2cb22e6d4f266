"""Writing the hls4ml project of a graph (``write_hls_project``): the checks, hls4ml's
``ModelGraph.write`` into a staging directory, the names file for tracing, the test bench
edits and tb_data vectors, and the deterministic stamp before the project is moved into
place.

hls4ml itself is imported by ``hwprune.hlsgen.extension`` when a project is written, not by
importing this module: ``NAMES_FILE`` and ``graph_digest`` are read by hwprune.sim.csim
without hls4ml.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np

from hwprune.builddir import write_atomic
from hwprune.errors import HwpruneError
from hwprune.hlsgen.config import BACKEND
from hwprune.hlsgen.extension import _copy_used_headers, _extension
from hwprune.hlsgen.layers import _hls_names, _layer_list
from hwprune.hlsgen.stream import stream_inputs, stream_layer_list, stream_names_entry
from hwprune.hw.stream import Plan, plan
from hwprune.ir import golden
from hwprune.ir.graph import Graph, Input, to_json, verify

# IR op name <-> hls4ml layer name, per op in graph order, written into every project so that
# hwprune.sim.csim.trace_csim can key the bridge's layer traces by IR name without the IR.
NAMES_FILE = "hwprune_names.json"
NAMES_FORMAT = 1
# The files hls4ml's C++ test bench (<project>_test.cpp, run by build_prj.tcl's csim and cosim)
# reads from the directory it runs in; without them it simulates a few all-zero inputs.
TB_INPUTS = "tb_data/tb_input_features.dat"
TB_OUTPUTS = "tb_data/tb_output_predictions.dat"
# That test bench parses every value with atof into a std::vector<float> before copying it
# into input_t: an integer is exact through it only up to 2**24 in magnitude. Projects whose
# input range goes beyond get a test bench that reads doubles (_double_test_bench), exact up
# to 2**53 like the C-simulation bridge; the others keep hls4ml's test bench unchanged.
_FLOAT_EXACT = 2**24
_DOUBLE_EXACT = 2**53


# --- writing ----------------------------------------------------------------------------------


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and (
        not out_dir.is_dir()
        or (any(out_dir.iterdir()) and not (out_dir / "hls4ml_config.yml").exists())
    ):
        raise HwpruneError(
            f"{out_dir} exists and is not an hls4ml project; give an empty or new directory"
        )


def graph_digest(g: Graph) -> str:
    """A hash of the graph's ops and outputs (not its meta data), recorded in NAMES_FILE so
    that a trace is never compared with the golden values of another graph."""
    return hashlib.sha256(to_json(Graph(g.ops, g.outputs)).encode()).hexdigest()[:16]


def _write_trace_names(g: Graph, model, path: Path) -> None:
    """Write NAMES_FILE: the graph's digest and, per op in graph order, its IR name, hls4ml
    layer name, output size and whether hls4ml saves its output when tracing (every op but
    the Input)."""
    names = _hls_names(g)
    layers = {layer.name: layer for layer in model.get_layers()}
    if set(layers) != set(names.values()):
        raise HwpruneError(
            f"hls4ml's layers {sorted(layers)} are not the graph's ops {sorted(names.values())}; "
            f"did an hls4ml optimizer pass add or remove a layer?"
        )
    ops = []
    for op in g.ops:
        layer = layers[names[op.name]]
        traced = bool(layer.get_attr("function_cpp", None) and layer.get_attr("trace", False))
        if traced == isinstance(op, Input):
            raise HwpruneError(
                f"layer {layer.name} (op {op.name!r}) is {'' if traced else 'not '}traced; "
                f"every op but the Input must be"
            )
        ops.append(
            {"ir": op.name, "hls": layer.name, "size": g.values[op.name].size, "traced": traced}
        )
    doc = {"format": NAMES_FORMAT, "graph": graph_digest(g), "ops": ops}
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _write_stream_trace_names(
    g: Graph, p: Plan, model, written: list[dict], ops: list[dict], path: Path
) -> None:
    """Write NAMES_FILE for a streaming project: as ``_write_trace_names``, with the ops of
    ``stream.stream_layer_list`` (a stage's ops share its layer; its trace is its pixel
    stream, reordered by ``order``) and the ``stream`` entry (the input stream's order).
    ``written`` is the layer list handed to hls4ml."""
    layers = {layer.name: layer for layer in model.get_layers()}
    if set(layers) != {d["name"] for d in written}:
        raise HwpruneError(
            f"hls4ml's layers {sorted(layers)} are not the ones written "
            f"{sorted(d['name'] for d in written)}; did an hls4ml optimizer pass add or remove "
            f"a layer?"
        )
    for d in ops:
        layer = layers[d["hls"]]
        traced = bool(layer.get_attr("function_cpp", None) and layer.get_attr("trace", False))
        if d["traced"] and not traced:
            raise HwpruneError(f"layer {layer.name} (op {d['ir']!r}) is not traced")
    doc = {
        "format": NAMES_FORMAT,
        "graph": graph_digest(g),
        "ops": ops,
        "stream": stream_names_entry(g, p),
    }
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _untrace_test_bench(path: Path) -> None:
    """Switch tracing off in hls4ml's C++ test bench (the Vitis csim/cosim one).

    hls4ml's test bench starts with ``trace_enabled = true`` and would then append every
    layer's output to a tb_data/<layer>_output.log text file per vector. hwprune traces only
    on request, through the bridge (``hwprune.sim.csim.trace_csim``); set it back to true here
    to get the logs from a Vitis C-simulation.
    """
    on = "bool trace_enabled = true;"
    text = path.read_text()
    if text.count(on) != 1:
        raise HwpruneError(f"{path} has no '{on}' line: this hls4ml version is not supported")
    path.write_text(text.replace(on, "bool trace_enabled = false;"))


def _tb_exact(g: Graph) -> int:
    """The largest input magnitude the project's test bench reads exactly."""
    r = g.inputs[0].range
    return _FLOAT_EXACT if max(-r.lo, r.hi) <= _FLOAT_EXACT else _DOUBLE_EXACT


def _double_test_bench(path: Path) -> None:
    """Make hls4ml's test bench keep the inputs it parses as double instead of float, so that
    every integer input up to 2**53 in magnitude reaches input_t exactly (atof returns a
    double; the std::vector<float> rounded it)."""
    text = path.read_text()
    edits = (
        ("std::vector<float> in;", "std::vector<double> in;"),
        ("nnet::copy_data<float, ", "nnet::copy_data<double, "),
    )
    for old, new in edits:
        if text.count(old) != 1:
            raise HwpruneError(f"{path} has no '{old}' line: this hls4ml version is not supported")
        text = text.replace(old, new)
    path.write_text(text)


def _finish(staging: Path, out_dir: Path, random_stamp: str) -> None:
    """Make the written project deterministic, then move it into place.

    hls4ml stamps each write with a random id (the name of the compiled library) and records
    the output directory; the stamp becomes a hash of the generated sources instead and the
    directory the final one. The old project is replaced only once the new one is complete.
    """
    import yaml  # an hls4ml dependency, like everything that writes projects

    digest = hashlib.sha256()
    stamped = {"build_lib.sh", "hls4ml_config.yml"}
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        rel = path.relative_to(staging).as_posix()
        # Test vectors are no source of the library: with or without them, the same stamp.
        if rel not in stamped and not rel.startswith("tb_data/"):
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    stamp = digest.hexdigest()[:8]
    build = staging / "build_lib.sh"
    text = build.read_text()
    if f"LIB_STAMP={random_stamp}\n" not in text:
        raise HwpruneError(f"{build} has no LIB_STAMP line: this hls4ml version is not supported")
    build.write_text(text.replace(f"LIB_STAMP={random_stamp}\n", f"LIB_STAMP={stamp}\n"))
    # Re-dumped as hls4ml dumps it (yaml.dump of plain data), with the final values.
    yml = staging / "hls4ml_config.yml"
    doc = yaml.safe_load(yml.read_text())
    doc.update(Stamp=stamp, OutputDir=str(out_dir))
    yml.write_text(yaml.dump(doc))
    old = out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def write_hls_project(
    g: Graph,
    out_dir: Path,
    part: str,
    clock_period_ns: float = 10.0,
    reuse_factor: int = 1,
    project_name: str = "myproject",
    vectors: np.ndarray | None = None,
) -> None:
    """Write an hls4ml Vitis project for graph ``g`` into ``out_dir``: io_parallel, or io_stream
    when ``g`` streams (``hw.stream.plan``, ``hlsgen.stream``).

    Every Dense layer's C++ holds exactly one product per nonzero weight at any reuse factor;
    ``reuse_factor`` R > 1 shares multipliers (pipeline II = R, at most ceil(nonzero / R)
    multipliers per layer). All types are exact integer types from the IR's ranges. The
    project is written with hls4ml's ``ModelGraph.write`` (no compilation: see
    ``hwprune.sim.csim.run_csim``), deterministically, and replaces an earlier hls4ml project
    in ``out_dir`` only once complete.

    hls4ml tracing is enabled for every layer but the input: the generated C++ saves each
    layer's output under ``#ifndef __SYNTHESIS__`` (synthesis and the product terms are
    unchanged), only while the bridge's ``allocate_trace_storage`` has switched tracing on
    (the test bench leaves it off). ``NAMES_FILE`` maps the IR op names to the layer names
    for ``hwprune.sim.csim.trace_csim`` and ``first_failing_layer``.

    ``vectors``, integer IR inputs of shape (n, input size), become the test bench's
    ``tb_data`` files with the golden outputs (see ``tb_data_files``); without them tb_data/
    stays empty and the test bench simulates a few all-zero inputs.

    A streaming design's project reads the image as a stream of pixels and runs each stream
    stage's kernel once per output pixel, its Dense with one product per nonzero kernel
    weight (``hlsgen.stream``); the head's layers follow as above, on one vector per image.
    Its stages pipeline one padded-grid position per ``reuse_factor`` cycles (II = R), their
    Dense sharing multipliers (at most ceil(nonzero / R)), as the Verilog does (``hw.reuse``);
    the head's Dense layers take ``reuse_factor`` as above.
    """
    try:
        verify(g)
    except ValueError as e:
        raise HwpruneError(f"the graph is not valid IR ({e}); run the IR passes first") from e
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise HwpruneError(
            f"the HLS emitter handles one input and one output, the graph has "
            f"{len(g.inputs)} and {len(g.outputs)}"
        )
    if len(g.ops) < 2:
        raise HwpruneError("the graph has only its input op: there is nothing to emit")
    if not isinstance(reuse_factor, int) or reuse_factor < 1:
        raise HwpruneError(f"reuse_factor must be an integer >= 1, got {reuse_factor!r}")
    if not clock_period_ns > 0:
        raise HwpruneError(f"clock_period_ns must be positive, got {clock_period_ns!r}")
    if not re.fullmatch(r"[A-Za-z_]\w*", project_name, flags=re.ASCII):
        raise HwpruneError(f"project_name {project_name!r} must be a C identifier")
    if not part.strip():
        raise HwpruneError("part is empty; give an FPGA part string such as xc7z020clg400-1")
    tb_files = tb_data_files(g, vectors) if vectors is not None else {}

    out_dir = Path(out_dir).resolve()
    _check_target(out_dir)
    p = plan(g)
    names = _hls_names(g)
    output = names[g.outputs[0]]
    if p is None:
        layers, precisions = _layer_list(g)
        model_config = {
            "Precision": "ap_uint<1>",
            "ReuseFactor": reuse_factor,
            "Strategy": "Latency",
            "PipelineStyle": "pipeline",
            "PipelineInterval": reuse_factor,
        }
    else:
        layers, precisions, stream_ops = stream_layer_list(g, p)
        if g.outputs[0] == p.stages[-1].ops[-1]:  # the network ends with the stream
            output = layers[-1]["name"]  # the collector
        # Each layer a process of its own, connected by streams: hls4ml's io_stream style.
        model_config = {
            "Precision": "ap_uint<1>",
            "ReuseFactor": reuse_factor,
            "Strategy": "Latency",
            "PipelineStyle": "dataflow",
        }
    ext = _extension()
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    config = ext.hls4ml.utils.config.create_config(
        output_dir=str(staging),
        project_name=project_name,
        backend=BACKEND,
        part=part,
        clock_period=clock_period_ns,
        io_type="io_parallel" if p is None else "io_stream",
    )
    # The model-wide precision is never used (every layer has its own exact types) but
    # hls4ml requires one; a 1-bit type would make any fallback visible in the C-simulation.
    config["HLSConfig"] = {"Model": model_config, "LayerName": precisions}
    # Every layer's output is saved for trace_csim; the calls are under #ifndef __SYNTHESIS__
    # and return at once unless the bridge's allocate_trace_storage switched tracing on.
    config["TraceOutput"] = True
    try:
        model = ext.hls4ml.model.graph.ModelGraph.from_layer_list(
            config,
            layers,
            inputs=[names[g.inputs[0].name]],
            outputs=[output],
        )
        model.write()
        _copy_used_headers(model, staging / "firmware")
        if p is None:
            _write_trace_names(g, model, staging / NAMES_FILE)
        else:
            _write_stream_trace_names(g, p, model, layers, stream_ops, staging / NAMES_FILE)
        _untrace_test_bench(staging / f"{project_name}_test.cpp")
        if _tb_exact(g) > _FLOAT_EXACT:
            _double_test_bench(staging / f"{project_name}_test.cpp")
        for rel, text in tb_files.items():
            (staging / rel).write_text(text)
        _finish(staging, out_dir, model.config.get_config_value("Stamp"))
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only left if something failed


# --- test bench data --------------------------------------------------------------------------


def _tb_lines(rows: np.ndarray) -> str:
    # Every value followed by one space, one vector per line: what nnet::print_result writes
    # into tb_data/csim_results.log (ap_int in decimal), so a correct simulation's log equals
    # the predictions file byte for byte. No banner: the test bench would read it as a vector.
    return "".join("".join(f"{v} " for v in row) + "\n" for row in rows.tolist())


def tb_data_files(g: Graph, x: np.ndarray) -> dict[str, str]:
    """The test bench's input and expected-output files for inputs ``x``: {path: text}.

    ``x`` holds integer IR inputs, shape (n, input size), n >= 1, inside the input's range.
    The project's ports are the IR's integer levels as ap_int/ap_uint (no scale), so both
    files hold plain decimal integers, one vector per line, space-separated: the inputs
    and their golden outputs (``golden.outputs``). hls4ml's test bench reads them with atof
    into floats, then into input_t: exact for inputs up to 2**24 in magnitude; a project
    whose input range goes beyond reads doubles (exact up to 2**53, larger inputs are
    refused). Predictions it only prints, rounded to 6 digits; its results log holds the
    outputs exactly, in the predictions file's format. A streaming design's inputs are
    written as its project reads them: pixel after pixel (``hlsgen.stream.stream_inputs``).
    """
    (inp,) = g.inputs
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != inp.size:
        raise HwpruneError(
            f"test bench vectors must have shape (n >= 1, {inp.size}), got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise HwpruneError("test bench vectors must be integers: the IR input levels")
    limit = _tb_exact(g)
    if np.abs(x).max() > limit:
        raise HwpruneError(
            f"a test bench input reaches {int(np.abs(x).max())}; the project's test bench "
            f"reads inputs exactly only up to 2**{limit.bit_length() - 1} in magnitude"
        )
    x = x.astype(np.int64)
    try:
        y = golden.outputs(g, x)
    except ValueError as e:
        raise HwpruneError(f"test bench vectors: {e}") from e
    p = plan(g)
    if p is not None:  # the project reads the image pixel by pixel (``stream.pixel_order``)
        x = stream_inputs(p, x)
    return {TB_INPUTS: _tb_lines(x), TB_OUTPUTS: _tb_lines(y)}


def write_tb_data(hls_dir: Path, g: Graph, x: np.ndarray) -> None:
    """Write ``tb_data_files(g, x)`` into a project written from ``g`` by
    ``write_hls_project``, each file atomically, replacing earlier vectors.

    Vitis' C-simulation and co-simulation (build_prj.tcl) then run the test bench on ``x``;
    each writes its outputs to tb_data/csim_results.log or rtl_cosim_results.log, which for a
    correct design equal tb_data/tb_output_predictions.dat byte for byte.
    """
    hls_dir = Path(hls_dir)
    names = hls_dir / NAMES_FILE
    if not names.is_file():
        raise HwpruneError(f"{names} is missing; write the project with write_hls_project")
    if json.loads(names.read_text()).get("graph") != graph_digest(g):
        raise HwpruneError(
            f"{hls_dir} was not written from this graph (its {NAMES_FILE} records another "
            f"graph digest); give the graph the project was written from, or rewrite it"
        )
    files = tb_data_files(g, x)
    benches = sorted(hls_dir.glob("*_test.cpp"))
    if _tb_exact(g) > _FLOAT_EXACT and not all(
        "std::vector<double> in;" in b.read_text() for b in benches
    ):
        raise HwpruneError(
            f"the test bench of {hls_dir} reads its inputs as float, which rounds this graph's "
            f"wide inputs; rewrite the project with write_hls_project"
        )
    for rel, text in files.items():
        write_atomic(hls_dir / rel, text)
