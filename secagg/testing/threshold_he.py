"""The harness's view of the threshold-HE protocol (:mod:`secagg.protocols.threshold_he`).

Promises stated by :class:`ThresholdHETarget`:

* outcome: the sum holds exactly the clients whose ciphertext arrived; the session aborts
  exactly when fewer than ``min_clients`` inputs arrived or too few committee members
  answer the decryption request: fewer than ``threshold`` valid ones (threshold Paillier;
  a member that vanished in the input round never answers it, one whose input was lost or
  bad still does), or, for CKKS, when the honest answers are fewer than ``threshold`` or
  not more than the largest group of identical wrong answers (the server takes the
  majority's answer);
* privacy: a committee member answers one decryption request per session, so each
  member discloses at most one decryption share (the harness checks that every holder
  sends at most one disclosing message). The ciphertexts are not Z_(2^b) vectors: there is
  no masked view to test for uniformity;
* protocol-specific client faults it applies (:meth:`ThresholdHETarget.tamper_answer`):
  ``wrong_length`` (an upload that claims another vector length: excluded),
  ``garbled_share`` and ``junk_share`` (a member's decryption share changed: a partial
  whose proof fails, or a CKKS answer whose first value is off by one or by half the
  range, outvoted if the honest answers outnumber it). The target remembers the wrong CKKS
  answers it sent, for :meth:`predict`. A wrong CKKS answer that the honest ones do not
  outnumber (a committee of one that lies, two identical liars against one) is published:
  every CKKS key holder can corrupt the sum; do not draw such faults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import TYPE_CHECKING

import msgpack
import numpy as np

from secagg.errors import ConfigurationError
from secagg.packing import pack, unpack
from secagg.protocols.base import SERVER_ID, ClientProtocol, Message, ServerProtocol
from secagg.protocols.threshold_he.config import CKKS, ThresholdHEConfig
from secagg.protocols.threshold_he.messages import (
    ROUND_DECRYPTION,
    ROUND_ENCRYPTED_INPUT,
    THRESHOLD_HE_ROUNDS,
    DecryptionShare,
    EncryptedInput,
    decode_threshold_he_message,
)
from secagg.testing.model import ClientFault, DropoutModel, Quorum
from secagg.testing.target import ConfigTarget, Prediction

if TYPE_CHECKING:
    from secagg.he.ckks import CkksContext
    from secagg.he.threshold_paillier import KeyShare

__all__ = ["DECRYPTION_SHARE", "ThresholdHETarget"]

DECRYPTION_SHARE = "decryption share"


class ThresholdHETarget(ConfigTarget):
    """One threshold-HE session under test (a ProtocolUnderTest).

    ``key_shares`` (threshold Paillier: member id -> KeyShare) or ``ckks_secret`` (CKKS: the
    secret context) are the dealer's material; the server gets the public config only.
    Raises ConfigurationError when the material does not fit the config's backend.
    """

    name = "threshold-he"
    config: ThresholdHEConfig

    def __init__(
        self,
        config: ThresholdHEConfig,
        *,
        key_shares: Mapping[int, KeyShare] | None = None,
        ckks_secret: CkksContext | None = None,
    ) -> None:
        if not isinstance(config, ThresholdHEConfig):
            raise ConfigurationError("ThresholdHETarget needs a ThresholdHEConfig")
        if config.backend == "threshold-paillier" and not key_shares:
            raise ConfigurationError("threshold Paillier needs the members' key shares")
        if config.backend == "ckks" and ckks_secret is None:
            raise ConfigurationError("CKKS needs the secret context")
        self.config = config
        # A member may answer a fallback wave for further blocks of the same aggregate (the
        # client refuses any other aggregate): at most one message per block.
        self.disclosing_messages = config.block_count
        self._key_shares = dict(key_shares or {})
        self._ckks_secret = ckks_secret
        self._garbled: dict[int, bytes] = {}  # CKKS: member -> the wrong answer it sent

    @classmethod
    def paillier(
        cls,
        clients: Sequence[int],
        *,
        bits: int,
        vector_length: int,
        committee: Sequence[int],
        threshold: int,
        min_clients: int = 2,
        key_bits: int = 512,
        decryption: str = "full",
    ) -> ThresholdHETarget:
        """A fresh dealer setup with a ``key_bits`` key (512 by default: a test-only size
        that keeps examples fast; never use it for real data) and the committee's
        ``decryption`` mode ("full" or "balanced")."""
        # Imported where used: the Paillier modules need gmpy2 (the ``he`` extra), and
        # importing secagg.testing must not.
        from secagg.protocols.threshold_he.keys import setup_threshold_paillier

        config, shares = setup_threshold_paillier(
            clients,
            bits=bits,
            vector_length=vector_length,
            committee=committee,
            threshold=threshold,
            min_clients=min_clients,
            key_bits=key_bits,
            decryption=decryption,
        )
        return cls(config, key_shares=shares)

    @classmethod
    def ckks(
        cls,
        clients: Sequence[int],
        *,
        bits: int,
        vector_length: int,
        committee: Sequence[int],
        threshold: int,
        min_clients: int = 2,
    ) -> ThresholdHETarget:
        """A fresh single-key CKKS setup (TenSEAL: imported here)."""
        from secagg.protocols.threshold_he.keys import setup_ckks

        config, secret = setup_ckks(
            clients,
            bits=bits,
            vector_length=vector_length,
            committee=committee,
            threshold=threshold,
            min_clients=min_clients,
        )
        return cls(config, ckks_secret=secret)

    @property
    def dropout_model(self) -> DropoutModel:
        config = self.config
        committee = frozenset(config.committee)
        return DropoutModel(
            clients=config.clients,
            rounds=THRESHOLD_HE_ROUNDS,
            input_round=ROUND_ENCRYPTED_INPUT,
            quorums={
                ROUND_ENCRYPTED_INPUT: Quorum(frozenset(config.clients), config.min_clients),
                ROUND_DECRYPTION: Quorum(committee, config.threshold),
            },
            neighbourhoods={m: committee - {m} for m in config.committee},
        )

    def make_server(self) -> ServerProtocol:
        from secagg.protocols.threshold_he.server import ThresholdHEServer

        self._garbled = {}  # a new run: nothing garbled yet
        return ThresholdHEServer(self.config, simulation=True)  # this process holds shares

    def make_client(self, client_id: int, vector: np.ndarray) -> ClientProtocol:
        from secagg.protocols.threshold_he.client import ThresholdHEClient

        return ThresholdHEClient(
            self.config,
            client_id,
            vector,
            key_share=self._key_shares.get(client_id),
            ckks_secret=self._ckks_secret,
        )

    def decode(self, data: bytes, sender: int) -> Message:
        return decode_threshold_he_message(data, sender=sender)

    def predict(
        self, vanished: Mapping[int, str], lost: AbstractSet[tuple[int, str]]
    ) -> Prediction:
        config = self.config
        inputs = {
            c
            for c in config.clients
            if vanished.get(c) != ROUND_ENCRYPTED_INPUT and (c, ROUND_ENCRYPTED_INPUT) not in lost
        }
        answering = [
            m for m in config.committee if m not in vanished and (m, ROUND_DECRYPTION) not in lost
        ]
        if len(inputs) < config.min_clients:
            return Prediction(True)
        if config.backend == CKKS:
            # Garbled answers are votes against the honest one (identical ones together).
            groups: dict[bytes, int] = {}
            for member, answer in self._garbled.items():
                if member not in vanished:
                    groups[answer] = groups.get(answer, 0) + 1
            honest = [m for m in answering if m not in self._garbled]
            if len(honest) < config.threshold or len(honest) <= max(groups.values(), default=0):
                return Prediction(True)
        elif len(answering) < config.threshold:
            return Prediction(True)
        return Prediction(False, frozenset(inputs))

    def tamper_answer(self, message: Message, fault: ClientFault) -> Message | None:
        if fault.kind == "wrong_length" and isinstance(message, EncryptedInput):
            record = msgpack.unpackb(message.payload)
            if not isinstance(record, dict) or "length" not in record:
                return None
            record["length"] += 1
            return replace(message, payload=msgpack.packb(record, use_bin_type=True))
        if fault.kind in ("garbled_share", "junk_share") and isinstance(message, DecryptionShare):
            config = self.config
            if config.backend != CKKS:
                # A partial whose values or encoding are off: its proof cannot verify.
                if fault.kind == "junk_share":
                    return replace(message, payload=b"\xc0")  # msgpack nil
                data = bytearray(message.payload)
                data[len(data) // 2] ^= 1
                return replace(message, payload=bytes(data))
            # CKKS: a well-formed answer that differs from the honest one in its first
            # value (by 1, or by half the range); it is a vote, recorded for predict().
            values = unpack(message.payload, config.bits, config.vector_length)
            delta = 1 if fault.kind == "garbled_share" else max(1, 1 << (config.bits - 1))
            values[0] = (int(values[0]) + delta) % (1 << config.bits)
            payload = pack(values, config.bits)
            self._garbled[message.sender] = payload
            return replace(message, payload=payload)
        return None

    def reveals(self, message: Message) -> Sequence[tuple[int, str]] | None:
        if isinstance(message, DecryptionShare):
            return [(SERVER_ID, DECRYPTION_SHARE)]  # a share of the session's decryption key
        return None
