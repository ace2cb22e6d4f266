"""The sweep file (SWEEP.toml): a base config, overrides, axes, and how points are chosen.

    base = "../digits.toml"          # a config file, relative to this file (or a bundled
                                     # example's name); optional: hwprune's defaults
    [config.train]                   # optional overrides of the base, any config section
    epochs = 20
    [axes]                           # dotted config keys -> the values each takes
    "prune.sparsity" = [0.5, 0.8, 0.9]
    "model.hidden" = [[32], [64, 32]]
    "compile.kernel" = ["mac", "adder-graph"]
    [sweep]
    mode = "grid"                    # or "random": `samples` points of the grid, drawn
    samples = 10                     #   without replacement with `seed`
    seed = 0
    sim = false                      # also run the simulation ladder on every point
    synth = ""                       # "yosys": also synthesize every point for its board

Everything is checked here, before any work starts: each axis key against the config's
sections and keys, each axis value on its own, then every chosen point as a whole config
(``config.from_dict``, so the cross-key checks apply too). An error names the sweep file,
the key as written and the fix.

A point's identity (``Point.key``) is a hash of what it computes: the resolved config's TOML
text, the run options and the bytes of a ``model.module`` file, so the same point in another
sweep, or in an edited one, is found computed already.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import math
import random
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from hwprune.config import Config, from_dict
from hwprune.errors import HwpruneError
from hwprune.names import SYNTH_TOOLS

TOP_KEYS = ("base", "config", "axes", "sweep")
MODES = ("grid", "random")
# [sweep] key -> (type, default).
SWEEP_KEYS: dict[str, tuple[type, object]] = {
    "mode": (str, "grid"),
    "samples": (int, 0),
    "seed": (int, 0),
    "sim": (bool, False),
    "synth": (str, ""),
}
KEY_HEX = 12  # hex digits of a point's key: 48 bits, no collision in any real sweep


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its axis values as written, its resolved config, its identity."""

    index: int  # position in the full grid (itertools.product order, last axis fastest)
    inputs: dict  # axis key -> value, as written in the sweep file
    config: Config
    key: str


@dataclass(frozen=True)
class Sweep:
    """A checked sweep file and the points it chooses."""

    source: Path
    base: Path | None
    axes: tuple[tuple[str, tuple], ...]
    mode: str
    samples: int
    seed: int
    sim: bool
    synth: str
    grid_size: int
    points: tuple[Point, ...]

    @property
    def axis_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.axes)


def _sections() -> dict[str, dict[str, object]]:
    """Config section -> {key: default}."""
    out = {}
    for f in fields(Config):
        default = f.default_factory()  # type: ignore[misc]
        out[f.name] = {g.name: getattr(default, g.name) for g in fields(default)}
    return out


def _near(word: str, choices) -> str:
    near = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {near[0]!r}? " if near else ""


def _read_toml(path: Path, what: str) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise HwpruneError(f"{path}: {what} is not valid TOML ({e}); fix the syntax") from None
    except OSError as e:
        raise HwpruneError(f"{path}: cannot read the {what} ({e.strerror})") from None


def _base_path(src: Path, base) -> Path:
    """``base`` relative to the sweep file, else the bundled example of that name."""
    from hwprune.resources import data_dir

    if not isinstance(base, str) or not base:
        raise HwpruneError(
            f'{src}: base = {base!r} must be the path of a config file, e.g. base = "digits.toml"'
        )
    p = src.parent / base
    if p.is_file():
        return p
    bundled = data_dir("examples")
    for name in (base, f"{base}.toml"):
        if Path(name).name == name and (bundled / name).is_file():
            return bundled / name
    raise HwpruneError(
        f'{src}: base = "{base}": no such file {p.resolve()} and no bundled example of that '
        "name; give a config file's path relative to the sweep file (or a bundled example "
        'such as "digits.toml")'
    )


def _absolute_module(value, folder: Path):
    """A "file.py:function" model.module made absolute against ``folder`` (where the file
    that names it lives), as ``config.load_config`` does for a config file."""
    if not isinstance(value, str):
        return value
    path, sep, fn = value.rpartition(":")
    if sep and path.endswith(".py") and not Path(path).is_absolute():
        return f"{(folder / path).resolve()}:{fn}"
    return value


def _with_modules(doc: dict, folder: Path) -> dict:
    model = doc.get("model")
    if isinstance(model, dict) and "module" in model:
        doc = {**doc, "model": {**model, "module": _absolute_module(model["module"], folder)}}
    return doc


def _merge(base: dict, over: dict) -> dict:
    """``over``'s keys replace ``base``'s, section by section (a list such as model.layers
    is replaced whole)."""
    out = copy.deepcopy(base)
    for sec, body in over.items():
        if isinstance(body, dict) and isinstance(out.get(sec), dict):
            out[sec].update(copy.deepcopy(body))
        else:
            out[sec] = copy.deepcopy(body)
    return out


def _resolve(doc: dict, src: str) -> Config:
    cfg = from_dict(doc, src)
    cfg.conv_choice()  # as load_config: a layer streaming after one that does not
    return cfg


def show_value(v) -> str:
    """A value as the sweep file spells it (TOML)."""
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(show_value(x) for x in v) + "]"
    return repr(v)


def describe(inputs: dict) -> str:
    """A point's axis values as one line: 'prune.sparsity = 0.8, compile.kernel = "mac"'."""
    return ", ".join(f"{k} = {show_value(v)}" for k, v in inputs.items()) or "(the base config)"


def _check_axes(src: Path, axes, sections: dict) -> tuple[tuple[str, tuple], ...]:
    if not isinstance(axes, dict):
        raise HwpruneError(f'{src}: axes must be a table ([axes] with "section.key" = [values])')
    out = []
    for key, values in axes.items():
        sec, dot, name = key.partition(".")
        if not dot or sec not in sections:
            raise HwpruneError(
                f'{src}: [axes] "{key}" is not a config key; {_near(sec, sections)}write it '
                f'as "section.key", e.g. "prune.sparsity" (sections: {", ".join(sections)})'
            )
        if name not in sections[sec]:
            raise HwpruneError(
                f'{src}: [axes] "{key}": [{sec}] has no key {name!r}; '
                f"{_near(name, sections[sec])}known: {', '.join(sections[sec])}"
            )
        if not isinstance(values, list) or not values:
            raise HwpruneError(
                f'{src}: [axes] "{key}" = {values!r} must be a non-empty list of the values '
                f'the key takes, e.g. "{key}" = [{show_value(sections[sec][name])}, ...]'
            )
        if isinstance(sections[sec][name], tuple) and not all(isinstance(v, list) for v in values):
            raise HwpruneError(
                f'{src}: [axes] "{key}" takes list values, so its axis is a list of lists, '
                f'e.g. "{key}" = [[32], [64, 32]]'
            )
        for i, v in enumerate(values):
            if v in values[:i]:
                raise HwpruneError(
                    f'{src}: [axes] "{key}" lists {show_value(v)} twice; list each value once'
                )
        out.append((key, tuple(values)))
    return tuple(out)


def _check_options(src: Path, body) -> dict:
    if not isinstance(body, dict):
        raise HwpruneError(f"{src}: sweep must be a table ([sweep])")
    opts = {k: d for k, (_, d) in SWEEP_KEYS.items()}
    for k, v in body.items():
        if k not in SWEEP_KEYS:
            raise HwpruneError(
                f"{src}: unknown key sweep.{k}; {_near(k, SWEEP_KEYS)}known: "
                f"{', '.join(SWEEP_KEYS)}"
            )
        want = SWEEP_KEYS[k][0]
        if not isinstance(v, want) or isinstance(v, bool) != (want is bool):
            raise HwpruneError(f"{src}: sweep.{k} must be {want.__name__}, got {v!r}")
        opts[k] = v
    if opts["mode"] not in MODES:
        raise HwpruneError(
            f'{src}: sweep.mode = "{opts["mode"]}" is not allowed; use one of {", ".join(MODES)}'
        )
    if opts["synth"] not in ("", *SYNTH_TOOLS):
        raise HwpruneError(
            f'{src}: sweep.synth = "{opts["synth"]}" is not allowed; use "" (no synthesis) or '
            + ", ".join(f'"{t}"' for t in SYNTH_TOOLS)
        )
    if opts["seed"] < 0:
        raise HwpruneError(f"{src}: sweep.seed = {opts['seed']} must be 0 or more")
    if opts["mode"] == "grid" and "samples" in body:
        raise HwpruneError(
            f'{src}: sweep.samples applies to mode = "random"; set mode = "random" or drop '
            "samples (a grid runs every point)"
        )
    if opts["mode"] == "random" and opts["samples"] < 1:
        raise HwpruneError(
            f'{src}: mode = "random" needs sweep.samples = N (a positive number of points)'
        )
    return opts


def point_key(config: Config, sim: bool, synth: str) -> str:
    """The identity of a point: a hash of everything that decides what it computes."""
    text = config.to_toml() + f'\n[sweep]\nsim = {sim}\nsynth = "{synth}"\n'
    path = config.model.module.rpartition(":")[0]
    if path.endswith(".py") and Path(path).is_file():
        # The user's model code is part of the point: an edited file is a new point.
        text += f'module_sha256 = "{hashlib.sha256(Path(path).read_bytes()).hexdigest()}"\n'
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_HEX]


def _grid_point(axes, index: int) -> dict:
    """The axis values of grid point ``index`` (last axis fastest, as itertools.product)."""
    values = {}
    for key, vals in reversed(axes):
        index, i = divmod(index, len(vals))
        values[key] = vals[i]
    return {k: values[k] for k, _ in axes}


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file and resolve every point it chooses into a Config.

    Raises HwpruneError (naming the file, the key as written and the fix) on the first
    problem; nothing is computed or written.
    """
    src = Path(path)
    if not src.is_file():
        raise HwpruneError(
            f"{src}: no such sweep file; pass a TOML file like examples/sweep_digits.toml"
        )
    doc = _read_toml(src, "sweep file")
    for k in doc:
        if k not in TOP_KEYS:
            raise HwpruneError(
                f"{src}: unknown key {k!r}; {_near(k, TOP_KEYS)}a sweep file has base, "
                "[config.<section>], [axes] and [sweep] (config sections go under [config.*])"
            )
    sections = _sections()
    base_file = _base_path(src, doc["base"]) if "base" in doc else None
    base_doc = {}
    if base_file is not None:
        base_doc = _with_modules(_read_toml(base_file, "base config"), base_file.parent)
        _resolve(base_doc, str(base_file))  # the base's own mistakes, named in the base
    inline = doc.get("config", {})
    if not isinstance(inline, dict) or not all(isinstance(v, dict) for v in inline.values()):
        raise HwpruneError(
            f"{src}: config must hold config sections as tables, e.g. [config.train] epochs = 20"
        )
    merged = _merge(base_doc, _with_modules(inline, src.parent))
    _resolve(merged, f"{src} [config]")
    axes = _check_axes(src, doc.get("axes", {}), sections)
    opts = _check_options(src, doc.get("sweep", {}))

    def with_values(values: dict) -> dict:
        over: dict[str, dict] = {}
        for key, v in values.items():
            sec, _, name = key.partition(".")
            over.setdefault(sec, {})[name] = _absolute_module(v, src.parent)
        return _merge(merged, over)

    # Each value alone first: the message then points at the value, not at a combination.
    for key, vals in axes:
        for v in vals:
            _resolve(with_values({key: v}), f"{src} [axes] {key} = {show_value(v)}")
    grid = math.prod(len(v) for _, v in axes)
    if opts["mode"] == "random":
        if opts["samples"] > grid:
            raise HwpruneError(
                f"{src}: sweep.samples = {opts['samples']} is more than the {grid} points of "
                f'the grid; use samples <= {grid}, or mode = "grid" to run them all'
            )
        indices = sorted(random.Random(opts["seed"]).sample(range(grid), opts["samples"]))
    else:
        indices = range(grid)
    points, keys = [], {}
    for i in indices:
        inputs = _grid_point(axes, i) if axes else {}
        where = f"{src} [axes] point {describe(inputs)}"
        cfg = _resolve(with_values(inputs), where)
        key = point_key(cfg, opts["sim"], opts["synth"])
        if key in keys:
            raise HwpruneError(
                f"{src}: points {describe(keys[key])} and {describe(inputs)} resolve to the "
                "same configuration; remove one of the values that make them equal"
            )
        keys[key] = inputs
        points.append(Point(i, inputs, cfg, key))
    return Sweep(
        src,
        base_file,
        axes,
        opts["mode"],
        opts["samples"],
        opts["seed"],
        opts["sim"],
        opts["synth"],
        grid,
        tuple(points),
    )
