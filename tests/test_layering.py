"""DESIGN.md: ir/, codegen/, estimate/ and boards import neither torch nor hls4ml."""

import subprocess
import sys
from pathlib import Path

CORE = [
    "hwprune.ir.graph",
    "hwprune.ir.golden",
    "hwprune.ir.passes",
    "hwprune.hw.schedule",
    "hwprune.hw.kernels",
    "hwprune.frontend.qonnx",
    "hwprune.codegen.verilog",
    "hwprune.codegen.cocotb_tb",
    "hwprune.estimate",
    "hwprune.estimate.synth",
    "hwprune.boards",
    "hwprune.report",
]


def test_core_imports_no_heavy_framework():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in CORE)
        + "print(sorted(m for m in ('torch', 'hls4ml', 'brevitas') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_config_and_cli_import_no_simulator_or_framework():
    """Validating a config (and parsing the command line) is light: no torch, cocotb or
    hls4ml, and config does not import the training data module (no import cycle)."""
    code = (
        "import sys\nimport hwprune.config, hwprune.cli, hwprune.names\n"
        "heavy = ('torch', 'hls4ml', 'brevitas', 'cocotb', 'cocotb_tools', 'hwprune.train.data')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_estimate_of_a_build_imports_no_framework_or_numpy(tmp_path):
    """`hwprune estimate DIR` reads ir.json and costs it: no onnx/qonnx (about a second to
    import), no torch, brevitas, hls4ml, cocotb or plotting, and no numpy either, so the
    command returns in a fraction of a second (benchmarks/estimate_speed.py)."""
    model = Path(__file__).resolve().parent / "models" / "unsw_nb15_mlp_w2a2.onnx"
    build = tmp_path / "b"
    r = subprocess.run(
        [sys.executable, "-m", "hwprune.cli", "compile", str(model), "-o", str(build)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    heavy = (
        "torch brevitas qonnx onnx onnxruntime hls4ml cocotb cocotb_tools dask matplotlib "
        "numpy scipy sklearn"
    ).split()
    for board in ("pynq-z2", "all"):  # one board also prints the per-layer table
        code = (
            "import sys\nfrom hwprune.cli import main\n"
            f"rc = main(['estimate', {str(build)!r}, '--board', {board!r}])\n"
            f"heavy = {heavy!r}\n"
            "print(rc, sorted({m.split('.')[0] for m in sys.modules} & set(heavy)), "
            "file=sys.stderr)\n"
        )
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert r.stderr.strip().splitlines()[-1] == "0 []", r.stderr
        assert "pynq-z2" in r.stdout
