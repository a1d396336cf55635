"""The harness's view of the threshold-CKKS protocol (:mod:`secagg.protocols.threshold_ckks`).

Promises stated by :class:`ThresholdCkksTarget`:

* outcome: the session aborts exactly when fewer than ``t`` committee members advertise,
  deal, or complete the key check (a member that vanished or whose answer was lost in a
  round takes no further part in the setup), when fewer than ``min_clients`` inputs arrive,
  or when fewer than ``t`` key holders answer the decryption request; otherwise the sum
  holds exactly the clients whose upload arrived (members that missed part of the setup
  still upload);
* privacy: a key holder answers one decryption request per session (one disclosing
  message); key-share deliveries travel sealed member to member, so the server never
  sees one;
* protocol-specific client faults it applies (:meth:`tamper_answer`): ``wrong_length``
  (an upload that claims another vector length), ``missing_bundle`` (a deal without one
  sealed delivery), ``bad_tag`` (a deal with one box's tag flipped: its recipient
  complains), ``garbled_share`` and ``junk_share`` (a decryption share with every residue
  moved by one, or zeroed: the verified combination names it; a residue pushed out of range
  makes the share undecodable, which is blamed too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace

import msgpack
import numpy as np

from secagg.errors import ConfigurationError
from secagg.protocols.base import SERVER_ID, ClientProtocol, Message, ServerProtocol
from secagg.protocols.threshold_ckks.client import ThresholdCkksClient
from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig
from secagg.protocols.threshold_ckks.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    ROUND_KEY_ADVERTISE,
    ROUND_KEY_CHECK,
    ROUND_KEY_DEAL,
    THRESHOLD_CKKS_ROUNDS,
    DecryptionShare,
    EncryptedInput,
    KeyDeal,
    Sealed,
    decode_threshold_ckks_message,
)
from secagg.protocols.threshold_ckks.server import ThresholdCkksServer
from secagg.testing.model import (
    CONTAINED_FAULTS,
    SHARE_FAULTS,
    ClientFault,
    DropoutModel,
    Quorum,
)
from secagg.testing.target import ConfigTarget, Prediction

__all__ = ["DECRYPTION_SHARE", "ThresholdCkksTarget"]

DECRYPTION_SHARE = "decryption share"
_SETUP = (ROUND_KEY_ADVERTISE, ROUND_KEY_DEAL, ROUND_KEY_CHECK)


def _answered(
    vanished: Mapping[int, str], lost: AbstractSet[tuple[int, str]], party: int, round_name: str
) -> bool:
    """Whether ``party``'s answer of ``round_name`` reaches the server."""
    gone = vanished.get(party)
    if gone is not None and THRESHOLD_CKKS_ROUNDS.index(gone) <= THRESHOLD_CKKS_ROUNDS.index(
        round_name
    ):
        return False
    return (party, round_name) not in lost


class ThresholdCkksTarget(ConfigTarget):
    """One threshold-CKKS session under test (a ProtocolUnderTest). The config is all it
    needs: the committee generates its key inside the session."""

    name = "threshold-ckks"
    config: ThresholdCkksConfig

    def __init__(self, config: ThresholdCkksConfig) -> None:
        if not isinstance(config, ThresholdCkksConfig):
            raise ConfigurationError("ThresholdCkksTarget needs a ThresholdCkksConfig")
        self.config = config

    @property
    def dropout_model(self) -> DropoutModel:
        config = self.config
        committee = frozenset(config.committee)
        member_quorum = Quorum(committee, config.threshold)
        return DropoutModel(
            clients=config.clients,
            rounds=THRESHOLD_CKKS_ROUNDS,
            input_round=ROUND_ENCRYPTED_INPUT,
            quorums={
                **dict.fromkeys(_SETUP, member_quorum),
                ROUND_ENCRYPTED_INPUT: Quorum(frozenset(config.clients), config.min_clients),
                ROUND_DECRYPTION: member_quorum,
            },
            neighbourhoods={m: committee - {m} for m in config.committee},
        )

    def make_server(self) -> ServerProtocol:
        return ThresholdCkksServer(self.config)

    def make_client(self, client_id: int, vector: np.ndarray) -> ClientProtocol:
        return ThresholdCkksClient(self.config, client_id, vector)

    def decode(self, data: bytes, sender: int) -> Message:
        return decode_threshold_ckks_message(data, sender=sender)

    def predict(
        self, vanished: Mapping[int, str], lost: AbstractSet[tuple[int, str]]
    ) -> Prediction:
        config = self.config
        holders = self._key_holders(vanished, lost)
        if len(holders) < config.threshold:
            return Prediction(True)
        inputs = frozenset(
            c for c in config.clients if _answered(vanished, lost, c, ROUND_ENCRYPTED_INPUT)
        )
        if len(inputs) < config.min_clients:
            return Prediction(True)
        shares = [m for m in holders if _answered(vanished, lost, m, ROUND_DECRYPTION)]
        if len(shares) < config.threshold:
            return Prediction(True)
        return Prediction(False, inputs)

    def _key_holders(
        self, vanished: Mapping[int, str], lost: AbstractSet[tuple[int, str]]
    ) -> list[int]:
        """The members that answered every setup round (no fewer than t at any of them,
        else the empty list: the setup aborts)."""
        taking_part = list(self.config.committee)
        for round_name in _SETUP:
            taking_part = [m for m in taking_part if _answered(vanished, lost, m, round_name)]
            if len(taking_part) < self.config.threshold:
                return []
        return taking_part

    def _shares_arriving(
        self, vanished: Mapping[int, str], lost: AbstractSet[tuple[int, str]]
    ) -> list[int]:
        """The key holders whose decryption share arrives (a lost one counts as missing:
        with a faulty share's answer among ``lost``, the honest shares)."""
        return [
            m
            for m in self._key_holders(vanished, lost)
            if _answered(vanished, lost, m, ROUND_DECRYPTION)
        ]

    def predict_faults(
        self,
        vanished: Mapping[int, str],
        lost: AbstractSet[tuple[int, str]],
        faults: Sequence[ClientFault],
    ) -> Prediction:
        """The outcome with ``faults`` injected: between "the fault costs nothing" and "the
        faulty answer is lost" (a dealer's bad box also costs its recipient the key share:
        the lone complaint leaves it without one). Where the two disagree on aborting, the
        target does not say (``aborts=None``); a completed session includes the clients of
        the pessimistic case (a bad upload is left out).

        A bad decryption share (shares carry no proof) is located only by ``t + 1`` honest
        shares that agree. With exactly ``t`` honest ones beside it the server may abort
        (two decryptions that no ``t + 1`` shares confirm) or complete; and when at most
        ``t`` shares can arrive nothing cross-checks it: the decryption's validity check
        catches a garbled share only with a probability that grows with the vector's length
        (a crafted one never), so the total is not pinned (README, threshold-CKKS trust
        model: a malicious member can corrupt the result unless ``t + 1`` shares arrive)."""
        optimistic = self.predict(vanished, lost)
        worse = set(lost)
        for fault in faults:
            if fault.kind in CONTAINED_FAULTS:
                continue  # the genuine answer arrives too: the outcome is unchanged
            worse.add((fault.client, fault.round_name))
            if fault.kind == "bad_tag" and fault.round_name == ROUND_KEY_DEAL:
                # The flipped box is the first one: that of the lowest advertised peer.
                peers = [
                    m
                    for m in sorted(self.config.committee)
                    if m != fault.client
                    and vanished.get(m) != ROUND_KEY_ADVERTISE
                    and (m, ROUND_KEY_ADVERTISE) not in lost
                ]
                worse |= {(m, ROUND_KEY_CHECK) for m in peers[:1]}
        pessimistic = self.predict(vanished, worse)
        bad_share = any(
            f.kind in SHARE_FAULTS and f.round_name == ROUND_DECRYPTION for f in faults
        )
        t = self.config.threshold
        arriving = [
            m
            for m in self.config.committee
            if vanished.get(m) is None and (m, ROUND_DECRYPTION) not in lost
        ]
        pinned = not bad_share or len(arriving) > t
        if optimistic.aborts is True:
            return replace(optimistic, pinned=pinned)
        if pessimistic.aborts is False and not (
            bad_share and len(self._shares_arriving(vanished, worse)) == t
        ):
            return replace(pessimistic, pinned=pinned)
        return Prediction(None, pessimistic.included, pinned=pinned)

    def reveals(self, message: Message) -> Sequence[tuple[int, str]] | None:
        if isinstance(message, DecryptionShare):
            return [(SERVER_ID, DECRYPTION_SHARE)]  # a share of the session's decryption
        return None

    def tamper_answer(self, message: Message, fault: ClientFault) -> Message | None:
        kind = fault.kind
        if kind == "wrong_length" and isinstance(message, EncryptedInput):
            record = msgpack.unpackb(message.ciphertext)
            record["m"] += 1
            return replace(message, ciphertext=msgpack.packb(record, use_bin_type=True))
        if kind in ("missing_bundle", "bad_tag") and isinstance(message, KeyDeal):
            if not message.boxes:
                return None
            boxes = list(message.boxes)
            if kind == "missing_bundle":
                del boxes[0]
            else:
                flipped = bytearray(boxes[0].box)
                flipped[-1] ^= 0x01
                boxes[0] = Sealed(boxes[0].peer, bytes(flipped))
            return replace(message, boxes=tuple(boxes))
        if kind in ("garbled_share", "junk_share") and isinstance(message, DecryptionShare):
            record = msgpack.unpackb(message.share)
            words = np.frombuffer(record["d"], dtype="<u4").copy()
            if kind == "junk_share":
                words[:] = 0
            else:
                words ^= np.uint32(1)  # every residue moves by one: far off the polynomial
            record["d"] = words.tobytes()
            return replace(message, share=msgpack.packb(record, use_bin_type=True))
        return None
