"""Replay: compile a fixed set of QONNX models and record a digest of every generated file.

Run before and after a change that must not change the output (a move, a refactor), then
compare the two digests:

    python -m tests.replay build/replay-models build/before.txt [KERNEL ...]
    ...change...
    python -m tests.replay build/replay-models build/after.txt [KERNEL ...]
    diff build/before.txt build/after.txt

Each model is compiled with each KERNEL given (default: mac).

The models are built once into the first folder (seeded, so the same bytes each time): the
coverage models, the layer models, the vendored zoo models and the third-party-style corpus
when present. Every file compile writes (ir.json, rtl/, hls/, estimate.json) is hashed.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

ZOO = Path(__file__).resolve().parent / "models"


def build_models(folder: Path) -> list[Path]:
    """The fixed replay set, built into ``folder`` unless already there."""
    from tests import qonnx_coverage_models as cov
    from tests import qonnx_layer_models as lay

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in cov.COVERAGE_MODELS.items():
        p = folder / f"cov_{name}.onnx"
        if not p.is_file():
            build(p, 0)
        paths.append(p)
    for name in ("conv2d_stride_pad", "pools_ternary_binary", "conv1d_bipolar", "shaped_input_cnn"):
        p = folder / f"layer_{name}.onnx"
        if not p.is_file():
            model, shape = getattr(lay, name)()
            lay.export_shaped(model, shape if isinstance(shape, tuple) else (shape,), p)
        paths.append(p)
    for src in sorted(ZOO.glob("*.onnx")):
        p = folder / f"zoo_{src.name}"
        if not p.is_file():
            shutil.copy(src, p)
        paths.append(p)
    return paths


def digest(build: Path) -> list[str]:
    """sha256 of every file under ``build``, by relative path, sorted (hls4ml_config.yml without
    its OutputDir line, which names the staging folder)."""
    lines = []
    for f in sorted(p for p in build.rglob("*") if p.is_file()):
        data = f.read_bytes()
        if f.name == "hls4ml_config.yml":  # names the random staging folder it was built in
            data = b"\n".join(x for x in data.split(b"\n") if not x.startswith(b"OutputDir:"))
        h = hashlib.sha256(data).hexdigest()[:16]
        lines.append(f"{f.relative_to(build)} {h}")
    return lines


def main(argv: list[str]) -> int:
    from hwprune import api

    warnings.filterwarnings("ignore")
    models, out = Path(argv[0]), Path(argv[1])
    kernels = argv[2:] or ["mac"]
    lines = []
    paths = build_models(models)
    for p in paths:
        for k in kernels:
            with tempfile.TemporaryDirectory() as tmp:
                d = Path(tmp) / "b"
                api.compile(p, d, kernel=k)
                tag = p.stem if k == "mac" else f"{p.stem}[{k}]"
                lines += [f"{tag}/{x}" for x in digest(d)]
            print(p.stem, k, flush=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} files from {len(paths)} models -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
