"""The HLS project emitter: hwprune's integer IR to an hls4ml project (Vitis; io_parallel, or
io_stream for a streaming design).

It lives at the package's edge, not in codegen/: DESIGN.md keeps ir/, codegen/, estimate/ and
boards free of torch and hls4ml imports.

hwprune does not hand hls4ml a QONNX model (DESIGN.md: hls4ml's own Dense kernels keep zero
weights in the emitted C++ and its QONNX path is not bit-exact). It builds hls4ml's
``ModelGraph`` directly from the IR, with two layer kinds of its own registered through
hls4ml's extension API:

- ``HwpruneDense`` receives the full integer weight matrix and bias, as hls4ml's Dense does.
  Our optimizer pass ``hwprune_remove_zero_terms``, registered in the backend's optimize flow,
  replaces them with the list of nonzero (row, column, weight) terms; the config template then
  writes a ``compute`` function with exactly one product per nonzero term, weights as literals.
  The kernel ``hls/nnet_utils/hwprune_dense.h`` pipelines it with II = reuse factor and caps
  the multipliers at ceil(nonzero / reuse factor).
- ``HwpruneRequant`` is y = clip(round(x * 2**-shift), lo, hi) with FLOOR or HALF_EVEN,
  implemented by ``hls/nnet_utils/hwprune_requant.h``.
- ``HwpruneMax`` is max pooling over the IR's explicit index groups (a constant index array,
  a balanced comparison tree per output), ``hls/nnet_utils/hwprune_max.h``.
- ``HwpruneThreshold`` is y = base + step * #{t : x >= t} per element (a constant threshold
  array), ``hls/nnet_utils/hwprune_threshold.h``.

A streaming design (``--conv stream``, ``hw.stream.plan``) becomes an io_stream project: the
image arrives as an ``hls::stream`` of pixels, and two more layer kinds run its front,
``hls/nnet_utils/hwprune_stream.h``:

- ``HwpruneStreamStage`` is one stream stage: a line buffer (the window's shift register) fed
  pixels and padding, and the stage's kernel called once per output pixel, written as the
  layer structs above (its Dense: one product per nonzero kernel weight, flag terms
  included).
- ``HwpruneCollect`` gathers the last stage's pixels into the head's input vector; the head's
  layers then run as above, one vector per image (stream overloads of their kernels).

Every C++ type is an ``ap_int``/``ap_uint`` derived from the IR's exact ranges and given to
hls4ml per layer name (granularity 'name'), so nothing can overflow and the input is not
rounded. hls4ml is imported only when a project is written: the parser
``count_product_terms`` works without it.

The modules, one job each:

- ``layers``: the IR's ops as hls4ml layer descriptions with exact precisions, layer names,
  the Requant and Threshold kernel constants, the reuse-factor rule.
- ``config``: the parameters.h config structs the templates write.
- ``extension``: the layer classes, templates and zero-term pass registered with hls4ml, and
  the kernel headers; the only module that imports hls4ml (inside ``_extension``).
- ``stream``: the io_stream layer list of a streaming design, its stage and collector structs,
  and the pixel order of its input stream and stage traces.
- ``project``: ``write_hls_project`` and the test bench's data files.
- ``readback``: the product terms parsed back from a written project.
"""

from hwprune.hlsgen.config import BACKEND, ZERO_TERM_PASS, requant_struct
from hwprune.hlsgen.extension import (
    ALWAYS_COPIED,
    DENSE_HEADER,
    KERNELS,
    MAX_HEADER,
    REQUANT_HEADER,
    STREAM_HEADER,
    THRESHOLD_HEADER,
    header_source,
)
from hwprune.hlsgen.layers import (
    LAYER_BUILDERS,
    ap_type,
    check_reuse_factor,
    requant_params,
    reuse_factor_fits,
    threshold_params,
)
from hwprune.hlsgen.project import (
    NAMES_FILE,
    NAMES_FORMAT,
    TB_INPUTS,
    TB_OUTPUTS,
    graph_digest,
    tb_data_files,
    write_hls_project,
    write_tb_data,
)
from hwprune.hlsgen.readback import count_product_terms, emitted_dense_terms

__all__ = [
    "ALWAYS_COPIED",
    "BACKEND",
    "DENSE_HEADER",
    "KERNELS",
    "LAYER_BUILDERS",
    "MAX_HEADER",
    "NAMES_FILE",
    "NAMES_FORMAT",
    "REQUANT_HEADER",
    "STREAM_HEADER",
    "TB_INPUTS",
    "TB_OUTPUTS",
    "THRESHOLD_HEADER",
    "ZERO_TERM_PASS",
    "ap_type",
    "check_reuse_factor",
    "count_product_terms",
    "emitted_dense_terms",
    "graph_digest",
    "header_source",
    "requant_params",
    "requant_struct",
    "reuse_factor_fits",
    "tb_data_files",
    "threshold_params",
    "write_hls_project",
    "write_tb_data",
]
