"""The run configuration (config.toml): sections, keys, defaults and validation.

Every key is declared once here with its type and allowed values; an unknown section or key,
a wrong type or a value outside its allowed set fails before any work starts, with a message
naming the key and what is allowed.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hwprune.errors import HwpruneError
from hwprune.sim.rtl import SIMULATORS
from hwprune.train.data import DATASETS

# The names of hwprune.prune's CRITERIA table, kept here so validating a config does not
# import torch; tests/test_config.py checks the two agree.
PRUNE_METHODS = ("magnitude",)
ROUNDINGS = ("floor", "half_even")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"
    test_fraction: float = 0.25
    seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = (64, 32)
    input_bits: int = 8
    weight_bits: int = 6
    act_bits: int = 8
    act_rounding: str = "floor"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 0.01
    seed: int = 0


@dataclass(frozen=True)
class PruneConfig:
    method: str = "magnitude"
    sparsity: float = 0.85
    finetune_epochs: int = 40


@dataclass(frozen=True)
class CompileConfig:
    board: str = "pynq-z2"
    reuse_factor: int = 1


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
    compile: CompileConfig = field(default_factory=CompileConfig)
    sim: SimConfig = field(default_factory=SimConfig)

    def to_toml(self) -> str:
        """The resolved configuration as TOML text (written to the build directory)."""
        lines = []
        for sec, vals in asdict(self).items():
            lines.append(f"[{sec}]")
            for k, v in vals.items():
                lines.append(f"{k} = {_toml_value(v)}")
            lines.append("")
        return "\n".join(lines)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


_SECTIONS = {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]

# key -> (check, allowed-values text); checks run after the type check.
_CHECKS = {
    "data.dataset": (lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}"),
    "data.test_fraction": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "model.hidden": (lambda v: len(v) >= 1 and all(n >= 1 for n in v), "a list of positive sizes"),
    "model.input_bits": (lambda v: 2 <= v <= 16, "an integer in [2, 16]"),
    "model.weight_bits": (lambda v: 2 <= v <= 16, "an integer in [2, 16]"),
    "model.act_bits": (lambda v: 2 <= v <= 16, "an integer in [2, 16]"),
    "model.act_rounding": (lambda v: v in ROUNDINGS, f"one of {', '.join(ROUNDINGS)}"),
    "train.epochs": (lambda v: v >= 1, "a positive integer"),
    "train.batch_size": (lambda v: v >= 1, "a positive integer"),
    "train.lr": (lambda v: v > 0, "a positive number"),
    "prune.method": (lambda v: v in PRUNE_METHODS, f"one of {', '.join(PRUNE_METHODS)}"),
    "prune.sparsity": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "prune.finetune_epochs": (lambda v: v >= 0, "a non-negative integer"),
    "compile.reuse_factor": (lambda v: v >= 1, "a positive integer"),
    "sim.vectors": (lambda v: v >= 1, "a positive integer"),
    "sim.simulator": (lambda v: v in SIMULATORS, f"one of {', '.join(SIMULATORS)}"),
}


def _coerce(key: str, value, default, src: str):
    want = type(default)
    if want is tuple:
        if not isinstance(value, list) or not all(isinstance(x, int) for x in value):
            raise HwpruneError(f"{src}: {key} must be a list of integers, got {value!r}")
        value = tuple(value)
    elif want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif not isinstance(value, want) or isinstance(value, bool) != isinstance(default, bool):
        raise HwpruneError(f"{src}: {key} must be {want.__name__}, got {value!r}")
    check = _CHECKS.get(key)
    if check and not check[0](value):
        raise HwpruneError(f"{src}: {key} = {value!r} is not allowed; use {check[1]}")
    return value


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
            vals[k] = _coerce(f"{sec}.{k}", v, known[k], src)
        sections[sec] = type(default)(**vals)
    return Config(**sections)


def load_config(path: str | Path) -> Config:
    """Read and validate a config.toml file."""
    p = Path(path)
    if not p.is_file():
        raise HwpruneError(f"{p}: no such config file; pass a TOML file like examples/digits.toml")
    try:
        doc = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise HwpruneError(f"{p}: not valid TOML ({e}); fix the syntax") from None
    return from_dict(doc, str(p))
