"""A fault-injection mod for the end-to-end test: a node that vanishes mid-round.

With node config ``drop-round=R drop-stage=S marker-dir=DIR``, the node's ClientApp, on
the secagg message of stage ``S`` of training round ``R``, writes ``DIR/dropped-<node>``
and hangs instead of answering, so that the test can kill the SuperNode at a known point.
Without that node config it does nothing. Not for production use.
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


def drop_injector_mod(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Hang on the configured (round, stage); otherwise pass the message on."""
    config = context.node_config
    if "drop-round" not in config or not has_envelope(message.content):
        return call_next(message, context)
    envelope = read_envelope(message.content, party=0, max_bytes=2**40)
    if envelope.identify is not None:
        return call_next(message, context)  # an identification precedes the round's stages
    stage = envelope.stage
    record = context.state.config_records.get(_STATE_KEY, ConfigRecord({"rounds": 0}))
    rounds = as_int(record["rounds"]) + (1 if stage == 0 else 0)
    context.state[_STATE_KEY] = ConfigRecord({"rounds": rounds})
    if (rounds, stage) == (as_int(config["drop-round"]), as_int(config["drop-stage"])):
        marker = Path(str(config["marker-dir"])) / f"dropped-{context.node_id}"
        marker.write_text(f"round {rounds} stage {stage}\n", encoding="utf-8")
        time.sleep(_HANG_SECONDS)
    return call_next(message, context)
