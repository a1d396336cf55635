"""Torch tests run their kernels on one thread.

The test run already keeps every core busy (``pytest -n 2``); torch's own intra-op pool on
top of that oversubscribes the machine, and small kernels then spend their time waiting for
threads (a few training steps of a small CNN took 39 s instead of 0.6 s on a loaded
2-core machine). One thread also makes CPU results reproducible across machines.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
