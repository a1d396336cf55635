"""secagg's log lines in Flower's console, and so in ``flwr run --stream``.

How Flower shows an app's logs (flwr 1.42): the ServerApp process (and the simulation
engine's process) mirrors its stdout and stderr to the SuperLink, which ``flwr run --stream``
prints; Flower's own lines get there through the ``flwr`` logger's console handler, which
writes to stdout at level INFO. secagg logs to ``logging.getLogger("secagg...")`` like any
library, without handlers, so by default only warnings reach stderr (Python's last-resort
handler) and the INFO lines (round transitions, timings) are lost.

:func:`forward_to_flower` attaches Flower's console handler to the ``secagg`` logger, so
secagg's lines look like Flower's and go wherever Flower sends its own (the stream, a
SuperNode's console for ClientApps). :class:`~secagg.integrations.flower.SecAggGrid`,
:class:`~secagg.integrations.flower.SecAggWorkflow` and the client mod call it unless
``SecAggSettings(forward_logs=False)`` / ``make_secagg_mod(forward_logs=False)``.

No secret is ever logged: secagg logs node ids, stage names, counts, sizes, timings and
reasons, never keys, seeds, shares, masked values or inputs.
"""

from __future__ import annotations

import logging

__all__ = ["LOGGER_NAME", "forward_to_flower"]

LOGGER_NAME = "secagg"


def forward_to_flower(level: int = logging.INFO) -> None:
    """Send the ``secagg`` logger's records to Flower's console handler (idempotent).

    The ``secagg`` logger's level is set to ``level`` only if nobody set one (an
    application's own choice wins). Records still propagate to the root logger, so an
    application's own handlers (and pytest's capture) see them too.
    """
    from flwr.common.logger import console_handler

    logger = logging.getLogger(LOGGER_NAME)
    if console_handler not in logger.handlers:
        logger.addHandler(console_handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(level)
