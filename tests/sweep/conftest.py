"""One LocalCluster of 2 single-threaded worker processes for every sweep test (starting one,
and importing torch in its workers, costs seconds); each test's sweep connects to it through
its scheduler address, as ``hwprune sweep --scheduler`` does."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def scheduler():
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with Client(cluster) as client:  # the workers are up before the first test
            client.wait_for_workers(2)
        yield cluster.scheduler_address
