"""Shared fixtures. The default job runs once per test session (about a minute) and the
end-to-end tests read its build directory."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """The bundled default job (train, export, compile, simulate, estimate), run once."""
    from hwprune import api
    from hwprune.cli import DEFAULT_EXAMPLE
    from hwprune.config import load_config
    from hwprune.resources import data_dir

    warnings.filterwarnings("ignore")
    out = tmp_path_factory.mktemp("default") / "build"
    cfg = load_config(data_dir("examples") / DEFAULT_EXAMPLE)
    report = api.run(cfg, out, progress=False)
    return out, cfg, report


@pytest.fixture(scope="session")
def small_qonnx(tmp_path_factory) -> Path:
    """A small untrained-but-calibrated Brevitas MLP exported to QONNX (seeded)."""
    import torch

    from hwprune.config import ModelConfig
    from hwprune.export.qonnx import export_model
    from hwprune.train.model import build_model

    warnings.filterwarnings("ignore")
    torch.manual_seed(1)
    model = build_model(ModelConfig(hidden=(12,)), (16,), 5)
    with torch.no_grad():
        w = model.linear0.weight
        w.mul_((torch.rand_like(w) > 0.6).float())  # exact zeros, as pruning leaves them
    model.train()
    for _ in range(3):  # let the activation quantizers calibrate their scales
        model(torch.rand(64, 16))
    path = tmp_path_factory.mktemp("small") / "small.onnx"
    export_model(model, 16, path)
    return path


@pytest.fixture(scope="session")
def scheduler():
    """One LocalCluster of 2 single-threaded worker processes for every test that runs Dask
    tasks (starting one, and importing torch in its workers, costs seconds); each test
    connects to it through its scheduler address, as ``--scheduler`` does."""
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with Client(cluster) as client:  # the workers are up before the first test
            client.wait_for_workers(2)
        yield cluster.scheduler_address
