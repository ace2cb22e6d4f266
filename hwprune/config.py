"""The run configuration (config.toml): sections, keys, defaults and validation.

Every key is declared once here with its type and allowed values; an unknown section or key,
a wrong type or a value outside its allowed set fails before any work starts, with a message
naming the key and what is allowed.

The model is either the MLP shorthand (``model.hidden``), a layer list (``[[model.layers]]``,
one table per layer, see ``LAYER_KEYS``) or a Python function (``model.module``).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from hwprune.errors import HwpruneError
from hwprune.names import (
    CONV_MODES,
    DATASETS,
    INIT_MASKS,
    KEEP_BY,
    KERNELS,
    PRUNE_CRITERIA,
    PRUNE_METHODS,
    PRUNE_SCHEDULES,
    ROUNDINGS,
    SIMULATORS,
    TEACHERS,
)

# Layer kind -> the keys a [[model.layers]] table of that kind may set (besides kind, name).
# "out" is features (linear) or channels (conv); 0 on the last layer = the number of classes.
# weight_bits 1 is binary (bipolar, +-scale), 2 is ternary (-1, 0, +1 times scale).
LAYER_KEYS = {
    "linear": ("out", "weight_bits", "bias"),
    "conv1d": ("out", "kernel", "stride", "padding", "weight_bits", "bias", "conv"),
    "conv2d": ("out", "kernel", "stride", "padding", "weight_bits", "bias", "conv"),
    "relu": ("bits", "rounding"),  # unsigned activation quantizer (QuantReLU)
    "act": ("bits", "rounding"),  # signed activation quantizer (QuantIdentity); bits 2 = ternary
    "bipolar": (),  # sign activation: +1 if x >= 0 else -1 (BipolarQuant)
    "batchnorm": (),  # folded into the preceding linear/conv before export
    "maxpool": ("kernel", "stride", "conv"),
    "avgpool": ("kernel", "stride", "bits", "rounding", "conv"),  # window: 2**k elements
    "flatten": (),
}
PRUNABLE_KINDS = ("linear", "conv1d", "conv2d")
WINDOW_KINDS = ("conv1d", "conv2d", "maxpool", "avgpool")  # may stream (hw.stream)


@dataclass(frozen=True)
class LayerConfig:
    """One entry of the layer list; which keys apply depends on ``kind`` (LAYER_KEYS)."""

    kind: str = "linear"
    name: str = ""  # default: kind + running index per kind (linear0, relu0, conv2d0, ...)
    out: int = 0
    kernel: int = 2
    stride: int = 0  # 0 = 1 for conv, = kernel for pooling
    padding: int = 0
    weight_bits: int = 6
    bias: bool = True
    bits: int = 8
    rounding: str = "floor"
    # Hardware of a convolution or pooling: "" = as [compile] conv says, "unroll" (this layer
    # and every one after it unrolled), "stream" (streamed, with every one before it).
    conv: str = ""


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"
    test_fraction: float = 0.25  # digits only; fashion-mnist has its own test set
    seed: int = 0
    train_samples: int = 0  # 0 = all; else a stratified subset of the training set
    downsample: int = 1  # average-pool images by this factor (fashion-mnist 28x28 -> 14x14)
    # Only these classes, relabelled 0, 1, ... in the order given; () = every class.
    classes: tuple[int, ...] = ()
    # Data pruning: keep this fraction of each class's training samples, the most informative
    # by keep_by (el2n, forgetting or random; hwprune.train.data_prune), scored over
    # score_epochs epochs of a seeded scoring run.
    keep: float = 1.0
    keep_by: str = "el2n"
    score_epochs: int = 5


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = (64, 32)
    input_bits: int = 8
    weight_bits: int = 6
    act_bits: int = 8
    act_rounding: str = "floor"
    input_shape: tuple[int, ...] = ()  # () = flat for MLPs, the image shape (C, H, W) for conv
    layers: tuple[LayerConfig, ...] = ()
    # "path/to/file.py:function" (relative to the config file) or "package.module:function"
    module: str = ""

    def layer_list(self) -> tuple[LayerConfig, ...]:
        """The layers with names filled in; the MLP shorthand expanded when no list is given."""
        layers = self.layers
        if not layers:
            acts = [
                LayerConfig("relu", bits=self.act_bits, rounding=self.act_rounding)
                for _ in self.hidden
            ]
            layers = tuple(
                x
                for n, a in zip(self.hidden, acts)
                for x in (LayerConfig("linear", out=n, weight_bits=self.weight_bits), a)
            ) + (LayerConfig("linear", out=0, weight_bits=self.weight_bits),)
        count: dict[str, int] = {}
        named = []
        for ly in layers:
            k = count.get(ly.kind, 0)
            count[ly.kind] = k + 1
            named.append(ly if ly.name else replace(ly, name=f"{ly.kind}{k}"))
        return tuple(named)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 0.01
    seed: int = 0


@dataclass(frozen=True)
class PruneConfig:
    criterion: str = "magnitude"  # how a mask is computed
    schedule: str = "one-shot"  # how much is pruned, and when
    method: str = "standard"  # what happens around it (lottery-ticket rewinding, dns splicing)
    sparsity: float = 0.85  # target fraction of zero weights in the pruned layers
    finetune_epochs: int = 40
    layers: tuple[str, ...] = ()  # names of the layers to prune; () = every linear/conv
    iterations: int = 4  # iterative schedule and lottery-ticket rounds
    tolerance: float = 0.02  # iterative guard: max accuracy drop below the dense model
    begin_step: int = 0  # agp / constant / dns: first optimizer step of the fine-tuning
    end_step: int = 600  # agp / constant / dns: last step at which masks change
    frequency: int = 20  # agp / constant / dns: steps between mask updates
    initial_sparsity: float = 0.0  # agp: sparsity at begin_step
    rewind_epoch: int = 1  # lottery-ticket: dense-training epoch whose weights are rewound to
    # Per-layer targets, e.g. { linear0 = 0.9, linear2 = 0.5 } (a TOML inline table): a named
    # layer's target instead of ``sparsity``; every layer follows the schedule's curve scaled
    # to its own target. Kept as (name, target) pairs.
    layer_sparsity: tuple[tuple[str, float], ...] = ()
    # train --init: the checkpoint's pruned weights stay pruned ("keep") or may regrow
    # ("reopen"); either way the configured schedule then prunes to its targets.
    init_masks: str = "keep"

    def target(self, name: str) -> float:
        """The final sparsity target of layer ``name``."""
        return dict(self.layer_sparsity).get(name, self.sparsity)


@dataclass(frozen=True)
class DistillConfig:
    teacher: str = "none"  # none | dense (the dense QAT model) | larger (a wider float model)
    temperature: float = 4.0
    alpha: float = 0.5  # weight of the distillation loss; 1 - alpha on the labels
    width_factor: int = 2  # larger teacher: every hidden width times this


@dataclass(frozen=True)
class CompileConfig:
    board: str = "pynq-z2"
    reuse_factor: int = 1
    # The precision the host quantizes a float graph input to (hls4ml spelling, e.g.
    # "fixed<16,6>") when the model reads it without a quantizer; "" = none stated.
    input_type: str = ""
    # How Dense layers become hardware (hwprune.hw.kernels): "mac" (one constant product per
    # nonzero weight and an adder tree per row).
    kernel: str = "mac"
    # The most adder levels between two register banks; 0 = one bank per layer ("layer").
    pipeline: int = 4
    # How convolutions become hardware: "unroll" (an adder tree per output pixel) or
    # "stream" (one kernel per layer, a pixel per cycle through line buffers).
    conv: str = "unroll"
    # ASIC targets the estimate step adds (e.g. "asic:osu018"; several separated by commas;
    # "" = none): the fast estimate, and the RTL mapped with yosys and timed and powered with
    # OpenSTA (hwprune.estimate.asic), into asic.json and report.md.
    asic: str = ""


@dataclass(frozen=True)
class SimConfig:
    vectors: int = 1000
    seed: int = 0
    simulator: str = "icarus"


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    compile: CompileConfig = field(default_factory=CompileConfig)
    sim: SimConfig = field(default_factory=SimConfig)

    def conv_choice(self) -> tuple[str, int | None]:
        """compile's ``conv`` and ``stream_layers`` from [compile] conv and the conv keys of
        the convolution and pooling layers: a layer marked "unroll" stops streaming before
        it, one marked "stream" streams with every one before it. HwpruneError when a layer
        would stream after one that does not."""
        wins = [ly for ly in self.model.layer_list() if ly.kind in WINDOW_KINDS]
        unroll = next((i for i, ly in enumerate(wins) if ly.conv == "unroll"), None)
        stream = [i for i, ly in enumerate(wins) if ly.conv == "stream"]
        if stream and unroll is not None and stream[-1] > unroll:
            raise HwpruneError(
                f'layer {wins[stream[-1]].name}: conv = "stream" after layer '
                f'{wins[unroll].name}: conv = "unroll"; a layer streams only if every '
                "convolution and pooling before it does"
            )
        conv, n = self.compile.conv, None
        if stream and conv == "unroll":
            conv, n = "stream", stream[-1] + 1
        if unroll is not None and conv != "unroll":
            conv, n = ("unroll", None) if unroll == 0 else (conv, unroll)
        return conv, n

    def to_toml(self) -> str:
        """The resolved configuration as TOML text (written to the build directory)."""
        lines = []
        for sec, vals in asdict(self).items():
            lines.append(f"[{sec}]")
            tables = []
            for k, v in vals.items():
                if k == "layers" and sec == "model":
                    tables = v
                    continue
                text = _toml_value(v)
                if k == "layer_sparsity" and not v:
                    text = "{}"  # an empty table, not an empty list
                lines.append(f"{k} = {text}")
            lines.append("")
            for ly in tables:
                lines.append("[[model.layers]]")
                keys = ("kind", "name", *LAYER_KEYS[ly["kind"]])
                lines += [f"{k} = {_toml_value(ly[k])}" for k in keys]
                lines.append("")
        return "\n".join(lines)


def _toml_value(v) -> str:
    if isinstance(v, tuple) and v and all(isinstance(x, tuple) for x in v):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v) + " }"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


_SECTIONS = {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]


def _bits(lo: int, hi: int):
    return (lambda v: lo <= v <= hi, f"an integer in [{lo}, {hi}]")


def _one_of(names):
    return (lambda v: v in names, f"one of {', '.join(names)}")


# key -> (check, allowed-values text); checks run after the type check.
def _asic_targets() -> tuple[str, ...]:
    from hwprune.libraries import list_libraries

    return tuple(x.target for x in list_libraries())


def _board_names() -> tuple[str, ...]:
    from hwprune.boards import list_boards

    return tuple(b.name for b in list_boards())


_CHECKS = {
    "data.dataset": _one_of(DATASETS),
    "data.test_fraction": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "data.train_samples": (lambda v: v >= 0, "0 (all) or a positive integer"),
    "data.downsample": (lambda v: v >= 1, "a positive integer"),
    "data.classes": (
        lambda v: not v or (len(v) >= 2 and len(set(v)) == len(v) and min(v) >= 0),
        "a list of at least 2 different class indices (0, 1, ...), or [] for all",
    ),
    "data.keep": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "data.keep_by": _one_of(KEEP_BY),
    "data.score_epochs": (lambda v: v >= 1, "a positive integer"),
    "model.hidden": (lambda v: len(v) >= 1 and all(n >= 1 for n in v), "a list of positive sizes"),
    "model.input_bits": _bits(1, 8),
    "model.weight_bits": _bits(1, 8),
    "model.act_bits": _bits(1, 8),
    "model.act_rounding": _one_of(ROUNDINGS),
    "model.input_shape": (lambda v: all(n >= 1 for n in v), "a list of positive sizes"),
    "layer.kind": _one_of(tuple(LAYER_KEYS)),
    "layer.out": (lambda v: v >= 0, "0 (last layer: number of classes) or a positive integer"),
    "layer.kernel": (lambda v: v >= 1, "a positive integer"),
    "layer.stride": (lambda v: v >= 0, "0 (default) or a positive integer"),
    "layer.padding": (lambda v: v >= 0, "a non-negative integer"),
    "layer.weight_bits": _bits(1, 8),
    "layer.bits": _bits(1, 8),
    "layer.rounding": _one_of(ROUNDINGS),
    "layer.conv": _one_of(("", "unroll", "stream")),
    "train.epochs": (lambda v: v >= 1, "a positive integer"),
    "train.batch_size": (lambda v: v >= 1, "a positive integer"),
    "train.lr": (lambda v: v > 0, "a positive number"),
    "prune.criterion": _one_of(PRUNE_CRITERIA),
    "prune.schedule": _one_of(PRUNE_SCHEDULES),
    "prune.method": _one_of(PRUNE_METHODS),
    "prune.sparsity": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "prune.finetune_epochs": (lambda v: v >= 0, "a non-negative integer"),
    "prune.iterations": (lambda v: v >= 1, "a positive integer"),
    "prune.tolerance": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "prune.begin_step": (lambda v: v >= 0, "a non-negative integer"),
    "prune.end_step": (lambda v: v >= 0, "a non-negative integer"),
    "prune.frequency": (lambda v: v >= 1, "a positive integer"),
    "prune.initial_sparsity": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "prune.rewind_epoch": (lambda v: v >= 0, "a non-negative integer"),
    "prune.init_masks": _one_of(INIT_MASKS),
    "distill.teacher": _one_of(TEACHERS),
    "distill.temperature": (lambda v: v > 0, "a positive number"),
    "distill.alpha": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "distill.width_factor": (lambda v: v >= 1, "a positive integer"),
    "compile.reuse_factor": (lambda v: v >= 1, "a positive integer"),
    "compile.kernel": _one_of(KERNELS),
    "compile.conv": _one_of(CONV_MODES),
    "compile.pipeline": (lambda v: v >= 0, "0 (one register bank per layer) or a positive integer"),
    "compile.board": (lambda v: v in _board_names(), "one of " + ", ".join(_board_names())),
    "compile.asic": (
        lambda v: all(t.strip() in _asic_targets() for t in v.split(",") if t.strip()),
        '"" or ASIC targets separated by commas, each one of ' + ", ".join(_asic_targets()),
    ),
    "compile.input_type": (
        lambda v: _precision_ok(v),
        "an hls4ml precision such as 'fixed<16,6>', 'ufixed<8,0>', 'int<8>' or "
        "'fixed<16,6,RND,SAT>' (or \"\" for none)",
    ),
    "sim.vectors": (lambda v: 1 <= v <= 1_000_000, "an integer from 1 to 1,000,000"),
    "sim.seed": (lambda v: v >= 0, "a non-negative integer"),
    "sim.simulator": _one_of(SIMULATORS),
}


def _precision_ok(v: str) -> bool:
    from hwprune.frontend.precision import parse_precision

    if v == "":
        return True
    try:
        parse_precision(v)
    except HwpruneError:
        return False
    return True


def _coerce(key: str, value, default, src: str, label: str | None = None):
    """Type-check and range-check one value; ``key`` finds its check in _CHECKS, ``label``
    (default: key) is how the message names it."""
    label = label or key
    want = type(default)
    if key == "prune.layer_sparsity":
        return _layer_targets(value, src, label)
    if want is tuple:
        item = str if key == "prune.layers" else int
        if not isinstance(value, list) or not all(
            isinstance(x, item) and not isinstance(x, bool) for x in value
        ):
            kind = "strings" if item is str else "integers"
            raise HwpruneError(f"{src}: {label} must be a list of {kind}, got {value!r}")
        value = tuple(value)
    elif want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif not isinstance(value, want) or isinstance(value, bool) != isinstance(default, bool):
        raise HwpruneError(f"{src}: {label} must be {want.__name__}, got {value!r}")
    check = _CHECKS.get(key)
    if check and not check[0](value):
        raise HwpruneError(f"{src}: {label} = {value!r} is not allowed; use {check[1]}")
    return value


def _layer_targets(value, src: str, label: str) -> tuple[tuple[str, float], ...]:
    """prune.layer_sparsity: a table of layer name -> sparsity in [0, 1)."""
    if not isinstance(value, dict):
        raise HwpruneError(
            f"{src}: {label} must be a table of layer name = sparsity, e.g. "
            f"{{ linear0 = 0.9, linear1 = 0.5 }}, got {value!r}"
        )
    out = []
    for name, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise HwpruneError(
                f"{src}: {label}.{name} = {v!r} is not allowed; use a number in [0, 1)"
            )
        out.append((name, float(v)))
    return tuple(out)


def _layer(body, k: int, src: str) -> LayerConfig:
    where = f"model.layers[{k}]"
    if not isinstance(body, dict):
        raise HwpruneError(f"{src}: {where} must be a table ([[model.layers]])")
    kind = _coerce("layer.kind", body["kind"], "", src, f"{where}.kind") if "kind" in body else None
    if kind is None:
        raise HwpruneError(f"{src}: {where} has no kind; use one of {', '.join(LAYER_KEYS)}")
    allowed = ("kind", "name", *LAYER_KEYS[kind])
    default = LayerConfig()
    vals = {}
    for key, v in body.items():
        if key not in allowed:
            raise HwpruneError(
                f"{src}: {where}.{key} is not a key of a {kind} layer; known: {', '.join(allowed)}"
            )
        vals[key] = _coerce(f"layer.{key}", v, getattr(default, key), src, f"{where}.{key}")
    return LayerConfig(**vals)


def _check_model(m: ModelConfig, src: str) -> None:
    """Cross-key checks on the model that need no torch (the rest wait for the data set)."""
    if m.module and m.layers:
        raise HwpruneError(f"{src}: set model.module or [[model.layers]], not both")
    if m.module and ":" not in m.module:
        raise HwpruneError(
            f"{src}: model.module = {m.module!r} must be 'file.py:function' or 'package:function'"
        )
    if m.module:
        return
    layers = m.layer_list()
    names = [ly.name for ly in layers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise HwpruneError(f"{src}: layer name {dup[0]!r} is used twice; names must be unique")
    if layers[-1].kind not in ("linear", "conv1d", "conv2d"):
        raise HwpruneError(
            f"{src}: the last layer is {layers[-1].kind}; end the layer list with a linear layer "
            "(its out = 0 means the number of classes)"
        )
    for ly in layers[:-1]:
        if ly.kind in PRUNABLE_KINDS and ly.out == 0:
            raise HwpruneError(
                f"{src}: layer {ly.name!r} needs out > 0 (only the last layer may leave it 0)"
            )


def check_prune_layers(prune: PruneConfig, names: list[str], src: str = "config") -> None:
    """Every name in prune.layers and prune.layer_sparsity must be a prunable layer of the
    model, and one that is pruned."""
    for n in prune.layers:
        if n not in names:
            raise HwpruneError(
                f"{src}: prune.layers names {n!r}, which is not a prunable layer; "
                f"the model's prunable layers are: {', '.join(names)}"
            )
    for n, _ in prune.layer_sparsity:
        if n not in names:
            raise HwpruneError(
                f"{src}: prune.layer_sparsity names {n!r}, which is not a prunable layer; "
                f"the model's prunable layers are: {', '.join(names)}"
            )
        if prune.layers and n not in prune.layers:
            raise HwpruneError(
                f"{src}: prune.layer_sparsity names {n!r}, which prune.layers leaves out; "
                "add it to prune.layers or drop it from prune.layer_sparsity"
            )


def _check_prune(c: Config, src: str) -> None:
    p = c.prune
    if p.method == "lottery-ticket" and p.schedule not in ("one-shot", "iterative"):
        raise HwpruneError(
            f"{src}: prune.method = lottery-ticket prunes in rounds with rewinding; set "
            "prune.schedule to one-shot (1 round) or iterative (prune.iterations rounds)"
        )
    if p.schedule in ("agp", "constant") or p.method == "dns":
        if p.end_step <= p.begin_step:
            raise HwpruneError(
                f"{src}: prune.end_step ({p.end_step}) must be greater than prune.begin_step "
                f"({p.begin_step})"
            )
    if p.schedule == "agp" and p.initial_sparsity > p.sparsity:
        raise HwpruneError(
            f"{src}: prune.initial_sparsity ({p.initial_sparsity}) must not exceed "
            f"prune.sparsity ({p.sparsity})"
        )
    if p.method == "lottery-ticket" and p.rewind_epoch > c.train.epochs:
        raise HwpruneError(
            f"{src}: prune.rewind_epoch ({p.rewind_epoch}) is after the last training epoch "
            f"({c.train.epochs}); use a value in [0, {c.train.epochs}]"
        )
    if p.layer_sparsity and p.criterion == "global-magnitude":
        raise HwpruneError(
            f"{src}: prune.criterion = global-magnitude chooses each layer's sparsity itself; "
            "with prune.layer_sparsity use magnitude (per layer) or drop layer_sparsity"
        )
    if p.init_masks == "reopen" and p.method == "lottery-ticket":
        raise HwpruneError(
            f"{src}: prune.init_masks = reopen cannot be used with lottery-ticket, which "
            "rewinds to the dense run; use init_masks = keep or prune.method = standard"
        )
    if not c.model.module:
        layers = c.model.layer_list()
        prunable = [ly for ly in layers if ly.kind in PRUNABLE_KINDS]
        check_prune_layers(p, [ly.name for ly in prunable], src)
        chosen = [ly for ly in prunable if not p.layers or ly.name in p.layers]
        binary = [ly.name for ly in chosen if ly.weight_bits == 1 and p.target(ly.name) > 0]
        if binary:
            raise HwpruneError(
                f"{src}: layer {binary[0]!r} has 1-bit (bipolar) weights, which cannot be zero, "
                "so it cannot be pruned; use weight_bits = 2 (ternary) or leave it out of "
                "prune.layers"
            )


def from_dict(doc: dict, src: str = "config") -> Config:
    """Validate a parsed TOML document and fill in defaults."""
    sections = {}
    for sec, body in doc.items():
        if sec not in _SECTIONS:
            raise HwpruneError(f"{src}: unknown section [{sec}]; known: {', '.join(_SECTIONS)}")
        if not isinstance(body, dict):
            raise HwpruneError(f"{src}: {sec} must be a table ([{sec}])")
        default = _SECTIONS[sec]()
        known = {f.name: getattr(default, f.name) for f in fields(default)}
        vals = {}
        for k, v in body.items():
            if k not in known:
                raise HwpruneError(f"{src}: unknown key {sec}.{k}; known: {', '.join(known)}")
            if sec == "model" and k == "layers":
                if not isinstance(v, list) or not v:
                    raise HwpruneError(
                        f"{src}: model.layers must be a list of tables ([[model.layers]])"
                    )
                vals[k] = tuple(_layer(body, i, src) for i, body in enumerate(v))
                continue
            vals[k] = _coerce(f"{sec}.{k}", v, known[k], src)
        sections[sec] = type(default)(**vals)
    cfg = Config(**sections)
    _check_model(cfg.model, src)
    _check_prune(cfg, src)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate a config.toml file."""
    p = Path(path)
    if not p.is_file():
        raise HwpruneError(f"{p}: no such config file; pass a TOML file like examples/digits.toml")
    try:
        doc = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise HwpruneError(f"{p}: not valid TOML ({e}); fix the syntax") from None
    cfg = from_dict(doc, str(p))
    cfg.conv_choice()  # a layer that would stream after one that does not: refused here
    # A model file is found relative to the config that names it, wherever hwprune runs.
    path, sep, fn = cfg.model.module.rpartition(":")
    if path.endswith(".py") and not Path(path).is_absolute():
        module = f"{(p.parent / path).resolve()}{sep}{fn}"
        cfg = replace(cfg, model=replace(cfg.model, module=module))
    return cfg
