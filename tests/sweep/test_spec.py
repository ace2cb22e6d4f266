"""Reading sweep files: points resolved before anything runs, grid order, a seeded sample
without replacement, paths found where the file that names them lives, stable identities."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hwprune.config import load_config
from hwprune.resources import data_dir
from hwprune.sweep.spec import load_sweep
from tests.sweep.helpers import TINY, write_sweep

AXES = """
[axes]
"prune.sparsity" = [0.5, 0.8, 0.9]
"model.hidden" = [[16], [32, 16]]
"compile.kernel" = ["mac", "adder-graph"]
"compile.board" = ["pynq-z2", "zcu104"]
"""


def test_grid_points_are_full_configs_in_product_order(tmp_path):
    sw = load_sweep(write_sweep(tmp_path, TINY + AXES))
    assert sw.grid_size == len(sw.points) == 24
    first, last = sw.points[0], sw.points[-1]
    assert first.inputs == {
        "prune.sparsity": 0.5,
        "model.hidden": [16],
        "compile.kernel": "mac",
        "compile.board": "pynq-z2",
    }
    assert last.inputs["prune.sparsity"] == 0.9 and last.inputs["compile.board"] == "zcu104"
    assert sw.points[1].inputs["compile.board"] == "zcu104"  # the last axis varies fastest
    c = sw.points[5].config  # 0.5, [32, 16], mac, zcu104
    assert c.model.hidden == (32, 16) and c.compile.board == "zcu104"
    assert c.compile.kernel == "mac" and c.prune.sparsity == 0.5
    # the rest comes from the base (digits.toml) with the sweep's overrides
    base = load_config(data_dir("examples") / "digits.toml")
    assert c.train.epochs == 2 and c.prune.finetune_epochs == 1
    assert c.train.lr == base.train.lr and c.data == base.data
    assert len({p.key for p in sw.points}) == 24


def test_random_sample_is_seeded_and_without_replacement(tmp_path):
    body = TINY + AXES + '[sweep]\nmode = "random"\nsamples = 7\nseed = 3\n'
    a = load_sweep(write_sweep(tmp_path / "a", body))
    b = load_sweep(write_sweep(tmp_path / "b", body))
    assert [p.index for p in a.points] == [p.index for p in b.points]
    assert len({p.index for p in a.points}) == 7 and all(0 <= p.index < 24 for p in a.points)
    grid = load_sweep(write_sweep(tmp_path / "g", TINY + AXES))
    for p in a.points:  # each sampled point is that point of the grid, same identity
        assert grid.points[p.index].inputs == p.inputs and grid.points[p.index].key == p.key
    other = load_sweep(write_sweep(tmp_path / "c", body.replace("seed = 3", "seed = 4")))
    assert [p.index for p in other.points] != [p.index for p in a.points]


def test_identity_is_what_the_point_computes(tmp_path):
    # The same config reached from another sweep (other axes) is the same point ...
    one = load_sweep(write_sweep(tmp_path / "1", TINY + '[axes]\n"prune.sparsity" = [0.8]\n'))
    two = load_sweep(
        write_sweep(tmp_path / "2", TINY + '[axes]\n"compile.kernel" = ["mac", "adder-graph"]\n')
    )
    base = load_sweep(write_sweep(tmp_path / "3", TINY))
    assert two.points[0].key == base.points[0].key != one.points[0].key
    # ... and simulating it is another point.
    sim = load_sweep(write_sweep(tmp_path / "4", TINY + "[sweep]\nsim = true\n"))
    assert sim.points[0].key != base.points[0].key


def test_paths_are_relative_to_the_file_that_names_them(tmp_path):
    # base: relative to the sweep file; model.module: relative to the file that names it.
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.toml").write_text(
        '[model]\nmodule = "models/net.py:tiny"\n[train]\nepochs = 1\n'
    )
    sweep = write_sweep(tmp_path / "sweeps", 'base = "../configs/base.toml"\n')
    sw = load_sweep(sweep)
    assert sw.base == tmp_path / "sweeps" / ".." / "configs" / "base.toml"
    (p,) = sw.points
    assert p.config.model.module == f"{(tmp_path / 'configs/models/net.py').resolve()}:tiny"
    sweep.write_text(
        'base = "../configs/base.toml"\n[axes]\n"model.module" = ["user_models.py:tiny"]\n'
    )
    (p,) = load_sweep(sweep).points
    assert p.config.model.module == f"{(tmp_path / 'sweeps/user_models.py').resolve()}:tiny"
    assert p.inputs == {"model.module": "user_models.py:tiny"}  # as written
    # A bare name that is no file beside the sweep file is a bundled example.
    sweep.write_text('base = "digits_ternary.toml"\n')
    assert load_sweep(sweep).base == data_dir("examples") / "digits_ternary.toml"


def test_editing_a_model_file_makes_a_new_point(tmp_path):
    sweep = write_sweep(tmp_path, TINY.replace("hidden = [8]", 'module = "user_models.py:tiny"'))
    before = load_sweep(sweep).points[0].key
    with open(tmp_path / "user_models.py", "a") as f:
        f.write("\n# edited\n")
    assert load_sweep(sweep).points[0].key != before
    assert Path(tmp_path / "user_models.py").is_file()


def test_checking_a_sweep_imports_no_framework(tmp_path):
    # A bad sweep file fails in a fraction of a second: no torch, Brevitas, hls4ml or Dask.
    sweep = write_sweep(tmp_path, TINY + '[axes]\n"prune.sparsity" = [0.5, 0.9]\n')
    code = (
        "import sys\nfrom hwprune.sweep.spec import load_sweep\n"
        f"load_sweep({str(sweep)!r})\n"
        "heavy = ('torch', 'brevitas', 'hls4ml', 'dask', 'distributed')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
