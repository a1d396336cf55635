"""A fault-injection mod for the end-to-end tests: a node that vanishes mid-round.

Two ways, both off unless configured:

* node config ``drop-round=R drop-stage=S marker-dir=DIR`` (deployment engine): the node's
  ClientApp, on the secagg message of stage ``S`` of training round ``R``, writes
  ``DIR/dropped-<node>`` and hangs instead of answering, so that a test can kill the
  SuperNode at a known point;
* run config ``drop-partition=P drop-round=R drop-stage=S`` (any engine, e.g. the
  simulation engine, where a hanging ClientApp would block the engine's worker): the
  ClientApp of partition ``P`` crashes on that message, and Flower answers the server with
  an error reply, as for a node that fails.

Not for production use.
"""

from __future__ import annotations

import time
from pathlib import Path

from flwr.app import ConfigRecord, Context, Message
from flwr.clientapp.typing import ClientAppCallable

from secagg.integrations.flower.wire import has_envelope, read_envelope
from secagg_flower_app.task import as_int

_STATE_KEY = "example.drop"
_HANG_SECONDS = 600.0


class InjectedDropout(RuntimeError):
    """The configured ClientApp crash."""


def drop_injector_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Hang or crash on the configured (round, stage); otherwise pass the message on."""
    node_config, run_config = context.node_config, context.run_config
    by_node = "drop-round" in node_config
    by_run = as_int(run_config.get("drop-partition", -1)) >= 0
    if not (by_node or by_run) or not has_envelope(message.content):
        return call_next(message, context)
    envelope = read_envelope(message.content, party=0, max_bytes=2**40)
    if envelope.identify is not None:
        return call_next(message, context)  # an identification precedes the round's stages
    stage = envelope.stage
    record = context.state.config_records.get(_STATE_KEY, ConfigRecord({"rounds": 0}))
    rounds = as_int(record["rounds"]) + (1 if stage == 0 else 0)
    context.state[_STATE_KEY] = ConfigRecord({"rounds": rounds})
    if by_node and (rounds, stage) == (as_int(node_config["drop-round"]),
                                       as_int(node_config["drop-stage"])):
        marker = Path(str(node_config["marker-dir"])) / f"dropped-{context.node_id}"
        marker.write_text(f"round {rounds} stage {stage}\n", encoding="utf-8")
        time.sleep(_HANG_SECONDS)
    if by_run and as_int(node_config.get("partition-id", -1)) == as_int(
        run_config["drop-partition"]
    ) and (rounds, stage) == (as_int(run_config.get("drop-round", 1)),
                              as_int(run_config.get("drop-stage", 0))):
        raise InjectedDropout(f"injected dropout at round {rounds}, stage {stage}")
    return call_next(message, context)
