"""hwprune's hls4ml extension: the layer classes, their config and function call templates,
the zero-term optimizer pass, registered with hls4ml once per process (``_extension``), and
the hand-written kernel headers copied into projects.

The one module of hwprune that imports hls4ml, and only inside ``_extension``: importing
this module does not import hls4ml.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from hwprune.hlsgen.config import (
    BACKEND,
    ZERO_TERM_PASS,
    _dense_config,
    _max_config,
    _requant_config,
    _threshold_config,
)
from hwprune.hlsgen.stream import collect_struct, stage_struct
from hwprune.resources import data_dir

DENSE_HEADER = "nnet_utils/hwprune_dense.h"
REQUANT_HEADER = "nnet_utils/hwprune_requant.h"
MAX_HEADER = "nnet_utils/hwprune_max.h"
THRESHOLD_HEADER = "nnet_utils/hwprune_threshold.h"
STREAM_HEADER = "nnet_utils/hwprune_stream.h"
# Headers hls4ml copies into every project (register_source). The kernels of layer kinds added
# later are copied only into projects that use them (_copy_used_headers): a project of a graph
# without them then stays byte-identical, library stamp included, to what earlier versions
# wrote.
ALWAYS_COPIED = (DENSE_HEADER, REQUANT_HEADER)
# Headers that include others: the streaming kernels run every io_parallel kernel.
_INCLUDES = {STREAM_HEADER: (MAX_HEADER, THRESHOLD_HEADER)}


def _stage_config(node) -> str:
    """The parameters.h config of one HwpruneStreamStage node (``stream.stage_struct``)."""
    return stage_struct(f"config{node.index}", node.get_attr("stage"), node.get_attr("reuse", 1))


def _collect_config(node) -> str:
    """The parameters.h config of one HwpruneCollect node (``stream.collect_struct``)."""
    return collect_struct(f"config{node.index}", node.get_attr("stage"), node.get_attr("n_out"))


# --- hls4ml extension: layers, templates, the zero-term pass ----------------------------------


# hls4ml layer class name -> (kernel function in namespace nnet, its header, the formatter of
# the layer's parameters.h config). The extension registers one config template and one
# function call template per entry.
KERNELS: dict[str, tuple[str, str, Callable]] = {
    "HwpruneDense": ("hwprune_dense", DENSE_HEADER, _dense_config),
    "HwpruneRequant": ("hwprune_requant", REQUANT_HEADER, _requant_config),
    "HwpruneMax": ("hwprune_max", MAX_HEADER, _max_config),
    "HwpruneThreshold": ("hwprune_threshold", THRESHOLD_HEADER, _threshold_config),
    "HwpruneStreamStage": ("hwprune_stream_stage", STREAM_HEADER, _stage_config),
    "HwpruneCollect": ("hwprune_collect", STREAM_HEADER, _collect_config),
}


def header_source(header: str) -> Path:
    """The hand-written kernel header that a project's ``firmware/<header>`` is a copy of."""
    return (data_dir("hls") / "nnet_utils" / Path(header).name).resolve()


def _copy_used_headers(model, firmware: Path) -> None:
    """Copy into ``firmware`` the kernel headers of the model's layers that hls4ml does not
    copy into every project (see ALWAYS_COPIED)."""
    used = {
        KERNELS[layer.class_name][1] for layer in model.get_layers() if layer.class_name in KERNELS
    }
    used |= {h for header in used for h in _INCLUDES.get(header, ())}
    for header in sorted(used - set(ALWAYS_COPIED)):
        shutil.copyfile(header_source(header), firmware / header)


@functools.cache
def _extension() -> SimpleNamespace:
    """Define hwprune's hls4ml layers, templates and pass, and register them once per process.

    Defined here rather than at module level so that importing this module does not import
    hls4ml (DESIGN.md keeps heavy frameworks out of codegen/ imports).
    """
    import hls4ml
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.attributes import Attribute, TypeAttribute, WeightAttribute
    from hls4ml.model.layers import Layer, register_layer
    from hls4ml.model.optimizer import OptimizerPass, get_available_passes

    class HwpruneDense(Layer):
        """y = bias + W x on integers; W arrives whole and leaves as its nonzero terms."""

        _expected_attributes = [
            Attribute("n_in"),
            Attribute("n_out"),
            Attribute("ir_name", value_type=str),
            WeightAttribute("weight"),
            WeightAttribute("bias"),
            TypeAttribute("weight"),
            TypeAttribute("bias"),
            TypeAttribute("accum"),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_out")])
            self.add_weights_variable(name="weight", var_name="w{index}")
            self.add_weights_variable(name="bias", var_name="b{index}")

    class HwpruneRequant(Layer):
        """y = clip(round(x * 2**-shift), lo, hi) elementwise on integers."""

        _expected_attributes = [
            Attribute("n_in"),
            Attribute("ir_name", value_type=str),
            Attribute("shift_left"),
            Attribute("shift_right"),
            Attribute("half_even", value_type=bool),
            Attribute("half"),
            Attribute("lo"),
            Attribute("hi"),
            Attribute("clip_lo", value_type=bool),
            Attribute("clip_hi", value_type=bool),
            TypeAttribute("work"),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_in")])
            self._set_type_t("work")

    class HwpruneMax(Layer):
        """y[i] = max(x[j] for j in groups[i]) on integers; windows padded to one size."""

        _expected_attributes = [
            Attribute("n_in"),
            Attribute("n_out"),
            Attribute("group_size"),
            Attribute("ir_name", value_type=str),
            Attribute("groups", value_type=tuple),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_out")])

    class HwpruneThreshold(Layer):
        """y = base + step * #{k : x >= thresholds[k]} elementwise on integers."""

        _expected_attributes = [
            Attribute("n_in"),
            Attribute("n_thresholds"),
            Attribute("ir_name", value_type=str),
            Attribute("thresholds", value_type=tuple),
            Attribute("base"),
            Attribute("step"),
            TypeAttribute("threshold"),
            TypeAttribute("work"),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_in")])
            self._set_type_t("threshold")
            self._set_type_t("work")

    class HwpruneStreamStage(Layer):
        """A stream stage (``hw.stream.Stage``): a stream of pixels in, one out, the stage's
        kernel once per output pixel."""

        _expected_attributes = [
            Attribute("n_pixels"),
            Attribute("n_chan"),
            Attribute("ir_name", value_type=str),
            Attribute("stage", value_type=object),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_pixels"), self.get_attr("n_chan")])

    class HwpruneCollect(Layer):
        """The last stage's pixels gathered into one vector per image, the head's input."""

        _expected_attributes = [
            Attribute("n_out"),
            Attribute("ir_name", value_type=str),
            Attribute("stage", value_type=object),
        ]

        def initialize(self) -> None:
            self.add_output_variable([self.get_attr("n_out")])

    class RemoveZeroTerms(OptimizerPass):
        """Invariant established: no HwpruneDense node holds a weight or bias array; its
        ``nonzero_terms`` lists (row, column, weight) for exactly the nonzero matrix entries,
        row-major, and ``bias_values`` the biases. Nothing downstream can emit a zero term.
        """

        name = ZERO_TERM_PASS

        def match(self, node) -> bool:
            return node.class_name == "HwpruneDense" and "weight" in node.weights

        def transform(self, model, node) -> bool:
            w = node.weights["weight"].data
            b = node.weights["bias"].data
            terms = tuple((int(r), int(c), int(w[r, c])) for r, c in zip(*w.nonzero(), strict=True))
            node.set_attr("nonzero_terms", terms)
            node.set_attr("bias_values", tuple(int(v) for v in b))
            # weight_t stays: compute() casts the weight literals to it. The biases become
            # accum_t literals, so bias_t would be an unused typedef.
            del node.weights["weight"]
            del node.weights["bias"]
            del node.types["bias_t"]
            return False  # the graph's structure is unchanged

    def templates(layer: str) -> tuple[type, type]:
        """The config and function call templates of one KERNELS entry."""
        kernel, header, config = KERNELS[layer]
        layer_class = layer_classes[layer]

        class Config(LayerConfigTemplate):
            def __init__(self) -> None:
                super().__init__(layer_class)

            def format(self, node) -> str:
                return config(node)

        class Call(FunctionCallTemplate):
            def __init__(self) -> None:
                super().__init__(layer_class, include_header=[header])

            def format(self, node) -> str:
                params = self._default_function_params(node)
                types = "{input_t}, {output_t}, {config}".format(**params)
                return f"nnet::{kernel}<{types}>({params['input']}, {params['output']});"

        return Config, Call

    classes = (
        HwpruneDense,
        HwpruneRequant,
        HwpruneMax,
        HwpruneThreshold,
        HwpruneStreamStage,
        HwpruneCollect,
    )
    layer_classes = {cls.__name__: cls for cls in classes}
    for name, cls in layer_classes.items():
        register_layer(name, cls)
    backend = hls4ml.backends.get_backend(BACKEND)
    prefix = backend.name.lower() + ":"
    # hls4ml refuses a second registration of a name and would append a pass to a flow twice;
    # skip what an earlier load of this module (importlib.reload) already registered.
    # Templates and the pass match nodes by class name, so earlier registrations still apply.
    registered = set(get_available_passes())
    for layer in KERNELS:
        for template in templates(layer):
            if prefix + template().get_name() not in registered:
                backend.register_template(template)
    if prefix + ZERO_TERM_PASS not in registered:
        ip_flow = hls4ml.model.flow.get_flow(backend.get_default_flow())
        optimize_flow = [f for f in ip_flow.requires if ":optimize" in f][0]
        backend.register_pass(ZERO_TERM_PASS, RemoveZeroTerms, flow=optimize_flow)
    for header in ALWAYS_COPIED:
        backend.register_source(header_source(header))
    return SimpleNamespace(hls4ml=hls4ml, backend=backend)
