"""The ClientApp: local "training" wrapped in secagg's secure aggregation mod."""

from __future__ import annotations

from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from secagg.integrations.flower import ClientPolicy, make_secagg_mod
from secagg_flower_app.drop import drop_injector_mod
from secagg_flower_app.task import as_int, client_update

# The injector sits outside the secagg mod so that it sees the protocol stages.
app = ClientApp(mods=[drop_injector_mod, make_secagg_mod(ClientPolicy(min_clients=3))])


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Return this partition's update; the secagg mod masks it before anything leaves."""
    partition = as_int(context.node_config["partition-id"])
    server_round = as_int(msg.content.config_records["config"]["server-round"])
    arrays, weight, loss = client_update(partition, server_round)
    content = RecordDict({
        "arrays": ArrayRecord({name: Array(values) for name, values in arrays.items()}),
        "metrics": MetricRecord({"num-examples": weight, "train_loss": loss}),
    })
    return Message(content, reply_to=msg)
