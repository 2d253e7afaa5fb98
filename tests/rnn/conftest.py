"""Recurrent tests run many tiny sequential matrix products (one per time step): on a shared
machine, BLAS and PyTorch worker threads only contend for the CPUs, so this package runs them
single-threaded (restored afterwards)."""
import pytest


@pytest.fixture(autouse=True, scope="module")
def _single_threaded():
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a test dependency
        yield
    else:
        with threadpool_limits(limits=1):
            yield
    torch.set_num_threads(n)
