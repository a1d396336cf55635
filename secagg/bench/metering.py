"""Peak memory of one protocol party, metered with tracemalloc around its own calls."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

__all__ = ["MeteredParty"]


class MeteredParty:
    """A party (client or server) whose calls are metered with tracemalloc (which must be
    running for the whole run).

    ``peak`` estimates the party's own peak memory: what it still holds from its earlier
    calls (net allocations during its calls) plus the transient peak of the current call.
    Conservative: a message it sent is counted until the transport drops it. ``inner`` may be
    replaced before the first call (the simulator builds the party itself).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.retained = 0
        self.peak = 0

    def _metered(self, call: Callable[[], Any]) -> Any:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = call()
        current, peak = tracemalloc.get_traced_memory()
        self.peak = max(self.peak, self.retained + peak - before)
        self.retained = max(0, self.retained + current - before)
        return out

    def start(self) -> Any:
        return self._metered(self.inner.start)

    def receive(self, message: Any) -> Any:
        return self._metered(lambda: self.inner.receive(message))

    def close_round(self) -> Any:
        return self._metered(self.inner.close_round)

    @property
    def client_id(self) -> int:
        return int(self.inner.client_id)

    @property
    def done(self) -> bool:
        return bool(self.inner.done)

    @property
    def result(self) -> Any:
        return self.inner.result
