"""DESIGN.md: ir/, codegen/, estimate/ and boards import neither torch nor hls4ml."""

import subprocess
import sys

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
