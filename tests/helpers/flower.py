"""Shared setup of the Flower tests (a plain module: conftest.py is the lead's)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import msgpack
from flwr.supercore.task_identity import TaskIdentity


@contextmanager
def server_task_identity() -> Iterator[None]:
    """Set what a ServerApp process has set when it builds messages (run 1, SuperLink node 0),
    and restore the previous identity on exit, even when the body raises."""
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1
    try:
        yield
    finally:
        TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


def bonawitz_params(threshold: int, degree: int | None = None, mode: str = "semi-honest",
                    identities: Sequence[bytes] | None = None) -> bytes:
    """The Bonawitz protocol parameters of a SessionSetup (what the server's plan sends)."""
    return bytes(msgpack.packb([threshold, degree, mode,
                                None if identities is None else list(identities)],
                               use_bin_type=True))
