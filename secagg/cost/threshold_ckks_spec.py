"""The cost side of the ``threshold-ckks`` registry entry: :data:`THRESHOLD_CKKS`, the
:class:`~secagg.cost.model.CostModel` its spec names, and the unit costs of its operations
(:func:`calibrate_threshold_ckks`).

The estimate takes the simulation's defaults (a committee of ``min(5, n)``, ``--degree``,
with a majority threshold); the model of a run takes the run's own parameters and its
exact set of dropped clients, so its bytes are exact.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from secagg.cost.model import CostModel, CostParams, FloorWork, RunFacts
from secagg.cost.threshold_ckks import threshold_ckks_costs
from secagg.cost.timing import UnitCosts
from secagg.errors import ConfigurationError
from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig

__all__ = ["THRESHOLD_CKKS", "calibrate_threshold_ckks"]

_CALIBRATION_CHUNKS = 4
"""Chunks of ``N`` values each per-chunk unit cost is measured on."""


def _estimate(params: CostParams) -> dict[str, Any]:
    return threshold_ckks_costs(
        params.clients,
        params.dim,
        params.bits,
        params.degree,
        params.threshold,
        params.dropouts,
    )


def _of_run(config: ThresholdCkksConfig, facts: RunFacts) -> dict[str, Any]:
    if list(config.committee) != list(range(1, len(config.committee) + 1)):
        raise ConfigurationError("the model assumes the committee is the first clients")
    return threshold_ckks_costs(
        config.n,
        config.vector_length,
        config.bits,
        len(config.committee),
        config.threshold,
        dropped=facts.dropped,
        params=config.scheme,
        session_id_bytes=len(config.session_id),
    )


def _best(fn: Callable[[], object], count: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / count


def calibrate_threshold_ckks(
    committee: int = 5, threshold: int = 3, clients: int = 100, bits: int = 32
) -> UnitCosts:
    """Unit costs of the threshold-CKKS operations at the parameters the protocol picks
    for ``committee`` members, ``clients`` summands and ``bits``-bit values, measured now
    with the library's own code (a committee is set up for real; about a second).
    Per-chunk operations are timed on :data:`_CALIBRATION_CHUNKS` chunks."""
    from secagg.channel import open_sealed, seal
    from secagg.he.threshold_ckks import (
        Ciphertext,
        CiphertextMask,
        Committee,
        CommitteeMember,
        DecryptionShare,
        PublicKey,
        PublicKeyShare,
        collective_public_key,
        combine,
        combine_verified,
        encrypt,
    )
    from secagg.keys import KeyPair, Purpose, agree
    from secagg.protocols.threshold_ckks.config import choose_parameters

    params = choose_parameters(committee, clients, bits)
    members = tuple(range(1, committee + 1))
    group = Committee(members, threshold)
    seed = os.urandom(32)
    people = {i: CommitteeMember(params, group, i, seed) for i in members}
    units: dict[str, float] = {}
    start = time.perf_counter()
    messages = {i: people[i].setup_message() for i in members}
    units["tckks_key_generations"] = (time.perf_counter() - start) / committee
    start = time.perf_counter()
    for j in members:
        people[j].finish_setup(members, {i: messages[i][1][j] for i in members if i != j})
    units["tckks_key_share_sums"] = (time.perf_counter() - start) / committee
    public = collective_public_key(params, seed, [messages[i][0] for i in members])
    share_bytes = messages[1][0].to_bytes()
    units["tckks_key_decodes"] = _best(lambda: PublicKeyShare.from_bytes(params, share_bytes), 1)
    key_shares = [messages[i][0] for i in members]
    units["tckks_public_key_builds"] = _best(
        lambda: collective_public_key(params, seed, key_shares).to_bytes(), 1
    )
    key_bytes = public.to_bytes()
    units["tckks_public_key_loads"] = _best(lambda: PublicKey.from_bytes(params, key_bytes), 1)
    own, peer = KeyPair.generate(), KeyPair.generate()
    session = os.urandom(16)

    def agreements() -> None:
        for _ in range(20):
            agree(
                own,
                peer.public_bytes,
                purpose=Purpose.SHARE_KEY,
                session_id=session,
                own_id=1,
                peer_id=2,
            )

    units["key_agreements"] = _best(agreements, 20)
    key = os.urandom(32)
    if committee > 1:
        plain = messages[1][1][2].to_bytes()
    else:
        plain = bytes(params.mask_bytes(params.degree))
    box = seal(key, plain, session_id=session, sender=1, recipient=2)
    units["aead_seals"] = _best(
        lambda: seal(key, plain, session_id=session, sender=1, recipient=2), 1
    )
    units["aead_opens"] = _best(
        lambda: open_sealed(key, box, session_id=session, sender=1, recipient=2), 1
    )
    length = _CALIBRATION_CHUNKS * params.degree
    values = np.zeros(length, dtype=np.uint64 if bits > 32 else np.uint32)
    units["tckks_encryptions"] = _best(lambda: encrypt(public, values), _CALIBRATION_CHUNKS)
    upload = encrypt(public, values)
    units["tckks_ciphertext_encodes"] = _best(upload.to_bytes, _CALIBRATION_CHUNKS)
    data = upload.to_bytes()
    units["tckks_ciphertext_decodes"] = _best(
        lambda: Ciphertext.from_bytes(params, data, length=length, summands=1),
        _CALIBRATION_CHUNKS,
    )
    total = upload + encrypt(public, values)
    units["tckks_additions"] = _best(lambda: total.add_(upload) and None, _CALIBRATION_CHUNKS, 1)
    total = upload + encrypt(public, values)
    mask = total.mask_part()
    units["tckks_mask_encodes"] = _best(mask.to_bytes, _CALIBRATION_CHUNKS)
    mask_bytes = mask.to_bytes()
    units["tckks_mask_decodes"] = _best(
        lambda: CiphertextMask.from_bytes(params, mask_bytes, length=length), _CALIBRATION_CHUNKS
    )
    counter = iter(range(1 << 30))
    units["tckks_decryption_shares"] = _best(
        lambda: people[1].decryption_share(mask, request_id=b"cal-%d" % next(counter)),
        _CALIBRATION_CHUNKS,
    )
    shares = [people[j].decryption_share(mask, request_id=b"cal") for j in members]
    units["tckks_share_encodes"] = _best(shares[0].to_bytes, _CALIBRATION_CHUNKS)
    encoded = shares[0].to_bytes()
    units["tckks_share_decodes"] = _best(
        lambda: DecryptionShare.from_bytes(params, encoded, length=length), _CALIBRATION_CHUNKS
    )
    units["tckks_combinations"] = _best(
        lambda: combine(group, total, shares[:threshold]), _CALIBRATION_CHUNKS
    )
    if committee > threshold:
        verified = _best(lambda: combine_verified(group, total, shares), _CALIBRATION_CHUNKS)
        extra = (verified - units["tckks_combinations"]) / (committee - threshold)
        units["tckks_consistency_checks"] = max(extra, 0.0)
    else:
        units["tckks_consistency_checks"] = 0.0
    return UnitCosts(
        units,
        {"degree": params.degree, "limbs": params.limbs, "committee": committee},
    )


def _calibrate(model: Mapping[str, Any], config: object) -> UnitCosts:
    p = model["parameters"]
    if isinstance(config, ThresholdCkksConfig):
        return calibrate_threshold_ckks(
            len(config.committee), config.threshold, config.n, config.bits
        )
    return calibrate_threshold_ckks(
        int(p["committee"]), int(p["threshold"]), int(p["n"]), int(p["bits"])
    )


def _floor_work(model: Mapping[str, Any]) -> dict[str, FloorWork]:
    """One mask per vector the party handles (a one-time pad): a client's upload, and each
    surviving upload the server adds."""
    params = model["parameters"]
    return {
        "client": FloorWork(1),
        "server": FloorWork(int(params["n"]) - int(params["dropouts"])),
    }


THRESHOLD_CKKS = CostModel(
    estimate=_estimate,
    of_run=_of_run,
    calibrate=_calibrate,
    floor_work=_floor_work,
)
