"""The client's guards against a malicious server: pure checks of the server's requests.

Role: client, rounds 1 (ShareKeys), 3 (ConsistencyCheck) and 4 (Unmasking).

Each function takes what the client saw so far and the server's request, and either
returns the sets the client will act on or raises. Counts are of distinct ids: a request
object handed over in process has not been through the decoder's duplicate checks. Every
refusal names the server (``party=0``): :class:`MaliciousRequestError` for a request that
breaks a rule (both shares of one peer, fewer than t peers, lists that contradict what the
client saw), :class:`AuthenticationError` for a forwarded signature that does not verify.
"""

from __future__ import annotations

from collections.abc import Sequence

from secagg.errors import AuthenticationError, DecodeError, MaliciousRequestError
from secagg.protocols.base import SERVER_ID
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.messages import (
    ConsistencyCheckRequest,
    PeerKeys,
    UnmaskingRequest,
    advertise_signature_payload,
    consistency_signature_payload,
)
from secagg.signing import verify_signature

__all__ = ["check_consistency_request", "check_peers", "check_unmasking_request", "refuse"]


def refuse(reason: str) -> MaliciousRequestError:
    """The error a client raises for a request it will not answer."""
    return MaliciousRequestError(f"refused: {reason}", party=SERVER_ID)


def _verify(
    config: ProtocolConfig, client: int, payload: bytes, signature: bytes, what: str
) -> None:
    assert config.identities is not None
    try:
        verify_signature(config.identities[client], payload, signature)
    except (AuthenticationError, DecodeError):
        raise AuthenticationError(
            f"the server forwarded {what} of client {client} with a bad signature",
            party=SERVER_ID,
        ) from None


def check_peers(
    config: ProtocolConfig, client_id: int, own_keys: Sequence[bytes], peers: Sequence[PeerKeys]
) -> None:
    """ShareKeys: the forwarded advertisements are of distinct neighbours only, at least
    t - 1 of them, with public keys all distinct from each other and from ``own_keys``, and (active
    mode) each signed by its client's registered identity."""
    neighbours = config.neighbours_of(client_id)
    if any(peer.client_id not in neighbours for peer in peers):
        raise refuse("the server forwarded keys of a client that is not a neighbour")
    if len({peer.client_id for peer in peers}) != len(peers):
        raise refuse("the server forwarded two advertisements of one client")
    if len(peers) + 1 < config.threshold:
        raise refuse(f"fewer than t = {config.threshold} clients remain")
    keys = list(own_keys)
    for peer in peers:
        keys += [peer.cipher_public_key, peer.mask_public_key]
    if len(set(keys)) != len(keys):
        raise refuse("two advertised public keys are equal")
    if config.mode == ACTIVE:
        for peer in peers:
            payload = advertise_signature_payload(
                config.session_id,
                peer.client_id,
                peer.cipher_public_key,
                peer.mask_public_key,
                peer.self_mask_commitment,
            )
            _verify(config, peer.client_id, payload, peer.signature, "the keys")


def check_consistency_request(
    config: ProtocolConfig,
    client_id: int,
    sharers: frozenset[int],
    request: ConsistencyCheckRequest,
) -> frozenset[int]:
    """ConsistencyCheck: the survivor set U3 names session clients only, contains this
    client, contains no neighbour that did not share with it (``sharers``), and keeps at
    least t members of its neighbourhood. Returns U3."""
    survivors = frozenset(request.survivors)
    if not survivors <= config.client_set:
        raise refuse("the survivor set names clients outside the session")
    if client_id not in survivors:
        raise refuse("the survivor set does not contain this client")
    neighbours = config.neighbours_of(client_id)
    if (survivors & neighbours) - sharers:
        raise refuse("a survivor never shared its keys with this client")
    if len(survivors & (neighbours | {client_id})) < config.threshold:
        raise refuse(f"fewer than t = {config.threshold} survivors remain")
    return survivors


def check_unmasking_request(
    config: ProtocolConfig,
    client_id: int,
    sharers: frozenset[int],
    signed_survivors: frozenset[int] | None,
    request: UnmaskingRequest,
) -> tuple[list[int], list[int]]:
    """Unmasking: the survivor and dropped lists are disjoint (never both shares of one
    peer), together exactly this client and the peers it masked with (``sharers``), keep
    this client alive and at least t survivors; in active mode the survivors are those of
    the consistency check (``signed_survivors``, U3) and at least t - 1 distinct neighbours
    signed that very U3. Returns (survivors, dropped), sorted."""
    survivors, dropped = frozenset(request.survivors), frozenset(request.dropped)
    if survivors & dropped:
        raise refuse(f"clients {sorted(survivors & dropped)} are listed dropped and alive")
    if survivors | dropped != sharers | {client_id}:
        raise refuse("the survivor and dropped lists do not match the peers we masked with")
    if client_id not in survivors:
        raise refuse("this client is listed as dropped")
    if len(survivors) < config.threshold:
        raise refuse(f"fewer than t = {config.threshold} survivors remain")
    if config.mode != ACTIVE:
        if request.signatures:
            raise refuse("signatures in a semi-honest session")
        return sorted(survivors), sorted(dropped)
    if signed_survivors is None:
        raise refuse("no consistency check came before unmasking")
    holders = config.neighbours_of(client_id) | {client_id}
    if survivors != signed_survivors & holders:
        raise refuse("the survivor list differs from the one of the consistency check")
    payload = consistency_signature_payload(config.session_id, sorted(signed_survivors))
    signers: set[int] = set()
    for item in request.signatures:
        if item.client_id not in survivors - {client_id}:
            raise refuse(f"a consistency signature of non-survivor {item.client_id}")
        _verify(config, item.client_id, payload, item.signature, "the consistency signature")
        signers.add(item.client_id)
    # Distinct signers: a repeated signature is one confirmation, not two.
    if len(signers) + 1 < config.threshold:
        raise refuse(f"fewer than t = {config.threshold} clients confirmed the survivors")
    return sorted(survivors), sorted(dropped)
