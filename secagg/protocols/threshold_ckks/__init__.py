"""Aggregation under threshold CKKS (multiparty RLWE), sans-I/O: no dealer, no single key.

The committee generates the collective key in the session (sealed member-to-member Shamir
deliveries relayed by the server), clients encrypt under it, the server adds ciphertexts,
and any ``t`` committee members' decryption shares reveal the sum; up to ``n - t`` may
drop, and a faulty share is found and blamed. The scheme is
:mod:`secagg.he.threshold_ckks`, its security argument is there.

The public face: :class:`ThresholdCkksConfig`, :class:`ThresholdCkksClient`,
:class:`ThresholdCkksServer` and :func:`decode_threshold_ckks_message`. The modules, one
job each:

* :mod:`.config`: the session's public parameters;
* :mod:`.messages`: the ten typed messages and their wire encoding;
* :mod:`.rounds`: states and the one transition table both parties consult;
* :mod:`.member`: a committee member's key setup over sealed channels and its decryption;
* :mod:`.client`, :mod:`.server`: the state machines;
* :mod:`.spec`: the registry entry ``threshold-ckks``.

Trust model: semi-honest committee, at most ``t - 1`` members colluding with the server;
then the server learns the sum of the included clients and nothing else. A malicious
member can corrupt the sum (undetected only if its share is crafted to fit), not read an
input. A malicious server is out of scope: a crafted aggregate decrypts to whatever it
encodes (see the README's threshold-CKKS trust model).
"""

from __future__ import annotations

from secagg.protocols.threshold_ckks.client import ThresholdCkksClient
from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig
from secagg.protocols.threshold_ckks.messages import decode_threshold_ckks_message
from secagg.protocols.threshold_ckks.server import ThresholdCkksServer

__all__ = [
    "ThresholdCkksClient",
    "ThresholdCkksConfig",
    "ThresholdCkksServer",
    "decode_threshold_ckks_message",
]
