"""The client's guards against a malicious server: pure checks of the server's requests.

Role: client, every round after the first.

Each function takes what the client saw so far and the server's request, and either
returns what the client will act on or raises. Counts are of distinct ids: a request
object handed over in process has not been through the decoder's duplicate checks. Every
refusal names the server (``party=0``): :class:`MaliciousRequestError` for a request that
breaks a rule (both secrets of one peer, fewer than t peers, lists that contradict what the
client saw, a nonce that does not match its commitment, a peer to mask with whose boxes
did not open, a secret to reveal about a key that was never proven), and
:class:`AuthenticationError` for a forwarded signature that does not verify.

The rules, round by round:

* ShareKeys: the peers are distinct neighbours, at least t - 1, their keys valid and
  distinct from each other and ours; active mode: each advertisement signed by its
  client's identity over the nonce commitment *this* client was sent, and its key proofs
  forwarded (so a holder can check a key before it reveals anything about it);
* ShareCheck: the nonce opens the commitment of round 0; the boxes come from distinct
  peers of ShareKeys and this client itself, at least t of them, its own included;
* the dispute wave: only dealers whose boxes it opened, and only once;
* MaskedInput: the peers to mask with are dealers whose boxes it opened, at least t - 1;
* Unmasking: never a self-mask share and a mask-key share of one owner (also across the
  dispute wave: a dealer whose self-mask box key it revealed is never listed dropped);
* the fallback wave: only dropped clients whose mask-key shares it revealed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from secagg.curve25519 import x25519_publics
from secagg.errors import AuthenticationError, DecodeError, MaliciousRequestError
from secagg.protocols.base import SERVER_ID
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.dealing import nonce_commitment
from secagg.protocols.bonawitz.messages import (
    SIGNATURE_BYTES,
    ConsistencyCheckRequest,
    DisputeRequest,
    FallbackRequest,
    MaskedInputRequest,
    PeerKeys,
    ShareCheckRequest,
    UnmaskingRequest,
    advertise_signature_payload,
    consistency_signature_payload,
    key_proof_payload,
)
from secagg.signing import verify_signature

__all__ = [
    "check_consistency_request",
    "check_dispute_request",
    "check_fallback_request",
    "check_key_proof",
    "check_masked_input_request",
    "check_peers",
    "check_share_check_request",
    "check_unmasking_request",
    "refuse",
]


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
    config: ProtocolConfig,
    client_id: int,
    own_keys: Sequence[bytes],
    commitment: bytes,
    peers: Sequence[PeerKeys],
) -> dict[int, tuple[bytes, bytes]]:
    """ShareKeys: the forwarded advertisements are of distinct neighbours only, at least
    t - 1 of them, with keys that have an X25519 form, all distinct from each other and
    from ``own_keys`` (our X25519 public keys), and (active mode) each signed by its
    client's identity over ``commitment`` (the nonce commitment we were sent), with its
    two key proofs. Returns peer -> (cipher, mask) X25519 public keys."""
    neighbours = config.neighbours_of(client_id)
    if any(peer.client_id not in neighbours for peer in peers):
        raise refuse("the server forwarded keys of a client that is not a neighbour")
    if len({peer.client_id for peer in peers}) != len(peers):
        raise refuse("the server forwarded two advertisements of one client")
    if len(peers) + 1 < config.threshold:
        raise refuse(f"fewer than t = {config.threshold} clients remain")
    try:
        publics = x25519_publics(
            [key for peer in peers for key in (peer.cipher_public_key, peer.mask_public_key)],
            party=SERVER_ID,
        )
    except DecodeError:
        raise refuse("the server forwarded a key that is not a point") from None
    if len(set(publics) | set(own_keys)) != len(publics) + len(own_keys):
        raise refuse("two advertised public keys are equal")
    if config.mode == ACTIVE:
        for peer in peers:
            payload = advertise_signature_payload(
                config.session_id,
                peer.client_id,
                commitment,
                peer.cipher_public_key,
                peer.mask_public_key,
                peer.self_mask_commitment,
            )
            _verify(config, peer.client_id, payload, peer.signature, "the keys")
            if len(peer.cipher_key_proof) != SIGNATURE_BYTES or len(
                peer.mask_key_proof
            ) != SIGNATURE_BYTES:
                raise refuse(f"the key proofs of client {peer.client_id} are missing")
    return {
        peer.client_id: (publics[2 * index], publics[2 * index + 1])
        for index, peer in enumerate(peers)
    }


def check_key_proof(config: ProtocolConfig, peer: PeerKeys, kind: str) -> None:
    """Active mode, before revealing a secret shared with ``peer``'s ``kind`` key
    ("cipher" or "mask"): its key proof verifies (so the key is the peer's own, not one
    related to an honest client's). The server checked it in round 0; a bad one here means
    it forwarded a key it should have refused."""
    if config.mode != ACTIVE:
        return  # an honest server verified every key proof in round 0
    key = peer.cipher_public_key if kind == "cipher" else peer.mask_public_key
    proof = peer.cipher_key_proof if kind == "cipher" else peer.mask_key_proof
    payload = key_proof_payload(config.session_id, peer.client_id, kind, key)
    try:
        verify_signature(key, payload, proof)
    except (AuthenticationError, DecodeError):
        raise refuse(f"the {kind} key of client {peer.client_id} has no valid proof") from None


def check_share_check_request(
    config: ProtocolConfig,
    client_id: int,
    peers: Collection[int],
    commitment: bytes,
    request: ShareCheckRequest,
) -> None:
    """ShareCheck: the nonce opens ``commitment``; the boxes' dealers are distinct, among
    ``peers`` (ShareKeys) and this client, this client included, at least t of them."""
    if nonce_commitment(config.session_id, request.nonce) != commitment:
        raise refuse("the nonce does not match the commitment of round 0")
    dealers = [item.peer for item in request.boxes]
    if len(set(dealers)) != len(dealers):
        raise refuse("two boxes from one dealer")
    if not set(dealers) <= set(peers) | {client_id}:
        raise refuse("a box from a client that did not advertise keys to us")
    if client_id not in dealers:
        raise refuse("our own boxes are missing")
    if len(dealers) < config.threshold:
        raise refuse(f"fewer than t = {config.threshold} clients remain")


def check_dispute_request(opened: Collection[int], request: DisputeRequest) -> list[int]:
    """The dispute wave: distinct dealers, at least one, each one whose boxes we opened."""
    dealers = list(request.dealers)
    if not dealers or len(set(dealers)) != len(dealers):
        raise refuse("a dispute request without distinct dealers")
    if not set(dealers) <= set(opened):
        raise refuse("a dispute about a box we did not open")
    return sorted(dealers)


def check_masked_input_request(
    config: ProtocolConfig, client_id: int, opened: Collection[int], request: MaskedInputRequest
) -> frozenset[int]:
    """MaskedInput: the peers are distinct, not this client, dealers whose boxes it opened,
    at least t - 1 of them. Returns them."""
    peers = list(request.peers)
    if len(set(peers)) != len(peers) or client_id in peers:
        raise refuse("the peers to mask with are not distinct peers")
    if not set(peers) <= set(opened):
        raise refuse("a peer to mask with whose boxes did not open")
    if len(peers) + 1 < config.threshold:
        raise refuse(f"fewer than t = {config.threshold} clients remain")
    return frozenset(peers)


def check_consistency_request(
    config: ProtocolConfig,
    client_id: int,
    sharers: frozenset[int],
    request: ConsistencyCheckRequest,
) -> frozenset[int]:
    """ConsistencyCheck: the survivor set U3 names session clients only, contains this
    client, contains no neighbour it did not mask with (``sharers``), and keeps at least t
    members of its neighbourhood. Returns U3."""
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
    disputed: Collection[int],
    request: UnmaskingRequest,
) -> tuple[list[int], list[int]]:
    """Unmasking: the survivor and dropped lists are disjoint (never both secrets of one
    peer), together exactly this client and the peers it masked with (``sharers``), keep
    this client alive and at least t survivors, and list no ``disputed`` dealer (one whose
    self-mask box key it revealed) as dropped; in active mode the survivors are those of
    the consistency check (``signed_survivors``, U3) and at least t - 1 distinct neighbours
    signed that very U3. Returns (survivors, dropped), sorted."""
    survivors, dropped = frozenset(request.survivors), frozenset(request.dropped)
    if survivors & dropped:
        raise refuse(f"clients {sorted(survivors & dropped)} are listed dropped and alive")
    if survivors | dropped != sharers | {client_id}:
        raise refuse("the survivor and dropped lists do not match the peers we masked with")
    if client_id not in survivors:
        raise refuse("this client is listed as dropped")
    if dropped & set(disputed):
        raise refuse("a dealer whose self-mask share we revealed is listed as dropped")
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


def check_fallback_request(
    config: ProtocolConfig,
    dropped: Collection[int],
    peers: Mapping[int, PeerKeys],
    request: FallbackRequest,
) -> list[int]:
    """The fallback wave: distinct owners, at least one, each a client we listed as
    dropped in Unmasking (we revealed its mask-key share, never its self-mask share), and
    (active mode) each with a valid mask-key proof. Returns them, sorted."""
    owners = list(request.owners)
    if not owners or len(set(owners)) != len(owners):
        raise refuse("a fallback request without distinct owners")
    if not set(owners) <= set(dropped):
        raise refuse("a pairwise secret with a client that was not listed as dropped")
    for owner in owners:
        check_key_proof(config, peers[owner], "mask")
    return sorted(owners)
