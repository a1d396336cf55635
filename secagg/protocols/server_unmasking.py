"""Round 4 on the server: check the revealed shares, reconstruct, remove the masks.

Theory of operation. The server needs one secret per client of U2: b_v for every survivor
(v in U3, its self mask is in the sum) and s_v^SK for every client that dropped after
sharing (v in U2 \\ U3, its pairwise masks with the survivors are in the sum).

* Reconstruction is batched: secrets whose first ``t`` holders are the same set are
  parsed in bulk and interpolated with one Lagrange vector (:mod:`share_batch`, over
  :func:`secagg.shamir.lagrange_coefficients_at_zero`, cached per holder set; plain
  SecAgg has a single set).
* Every secret is verified against what its owner published in AdvertiseKeys: b_v against
  the SHA-256 commitment, s_v^SK against the mask public key. A secret that fails goes
  through a bounded search for a verified ``t``-subset (holders already caught lying are
  left out first); the shares off the verified polynomial are then attributed to their
  holders. Only when no verified reconstruction exists does the server abort.
* Masks are regenerated with :func:`secagg.masking.apply_masks` over all seeds at once (one
  call per PRG domain), on its thread pool.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from secagg.errors import DecodeError, ProtocolAbort, ShareError
from secagg.keys import KeyPair, Purpose, agree
from secagg.masking import apply_masks, pairwise_sign
from secagg.prg import domain
from secagg.protocols.base import SERVER_ID
from secagg.protocols.bundles import clamp_scalar, self_mask_commitment
from secagg.protocols.config import ACTIVE, ProtocolConfig
from secagg.protocols.messages import (
    AdvertiseKeys,
    PeerSignature,
    UnmaskingRequest,
    UnmaskingResponse,
)
from secagg.protocols.share_batch import interpolate, limbs_to_secrets, parse_records
from secagg.shamir import LIMBS, SHARE_BYTES, Share, reconstruct_secret

__all__ = [
    "MAX_SEARCH_ATTEMPTS",
    "RevealedShares",
    "plan_unmasking",
    "reconstruct_all",
    "remove_masks",
]

#: Upper bound on reconstructions tried for one secret whose first attempt failed.
MAX_SEARCH_ATTEMPTS = 2048

SELF_MASK = "self mask"
MASK_KEY = "mask key"


@dataclass
class RevealedShares:
    """The share records collected in Unmasking: secret owner -> holder -> Share bytes.

    Records are kept as bytes and parsed in bulk at reconstruction (:mod:`share_batch`).
    """

    self_mask: dict[int, dict[int, bytes]] = field(default_factory=dict)
    mask_key: dict[int, dict[int, bytes]] = field(default_factory=dict)

    def record(
        self, response: UnmaskingResponse, survivors: frozenset[int], dropped: frozenset[int]
    ) -> list[str]:
        """Store the shares of one response whose holder was asked about ``survivors``
        (b shares) and ``dropped`` (s^SK shares); return the faults found.

        Guarantees: a response whose owners do not partition what was asked is discarded
        whole; a share record of the wrong size is discarded alone (a record that does not
        parse is caught at reconstruction). Nothing raises: faults are returned as text.
        """
        holder = response.sender
        asked_self = {item.owner for item in response.self_mask_shares}
        asked_key = {item.owner for item in response.key_shares}
        unreadable = set(response.unreadable)
        if (
            asked_self & unreadable
            or asked_key & unreadable
            or asked_self | (unreadable & survivors) != survivors
            or asked_key | (unreadable & dropped) != dropped
            or holder in unreadable
        ):
            return ["an unmasking response that does not answer what was asked (discarded)"]
        faults: list[str] = []
        for items, table in (
            (response.self_mask_shares, self.self_mask),
            (response.key_shares, self.mask_key),
        ):
            for owner, share in items:
                if len(share) == SHARE_BYTES:
                    table.setdefault(owner, {})[holder] = share
                else:
                    faults.append(f"a malformed share of client {owner}'s secret")
        return faults


@dataclass(frozen=True)
class _Job:
    owner: int
    kind: str
    records: Mapping[int, bytes]
    verify: Callable[[bytes], bool]


def _verifier(config: ProtocolConfig, advert: AdvertiseKeys, kind: str) -> Callable[[bytes], bool]:
    if kind == SELF_MASK:

        def check_self_mask(secret: bytes) -> bool:
            commitment = self_mask_commitment(config.session_id, advert.sender, secret)
            return hmac.compare_digest(commitment, advert.self_mask_commitment)

        return check_self_mask

    def check_mask_key(secret: bytes) -> bool:
        if secret != clamp_scalar(secret):  # clients share the clamped form only
            return False
        try:
            public = KeyPair.from_private_bytes(secret).public_bytes
        except (DecodeError, ValueError):
            return False
        return hmac.compare_digest(public, advert.mask_public_key)

    return check_mask_key


def _try(shares: Sequence[Share], verify: Callable[[bytes], bool]) -> bytes | None:
    try:
        secret = reconstruct_secret(shares)
    except (ShareError, DecodeError, ValueError):
        return None
    return secret if verify(secret) else None


def _candidates(order: list[int], threshold: int) -> Iterator[tuple[int, ...]]:
    """t-subsets of ``order`` (trusted holders first): the first t, then every single swap
    of one of them for a spare, then all combinations in order."""
    first = tuple(order[:threshold])
    yield first
    for left_out in reversed(first):
        for spare in order[threshold:]:
            yield (*(x for x in first if x != left_out), spare)
    yield from itertools.combinations(order, threshold)


def _parse_shares(job: _Job, threshold: int) -> tuple[dict[int, Share], set[int]]:
    """The job's records as Shares, and the holders whose record is malformed."""
    shares: dict[int, Share] = {}
    malformed: set[int] = set()
    for holder, data in job.records.items():
        try:
            share = Share.from_bytes(data)
        except (DecodeError, ShareError, ValueError):
            malformed.add(holder)
            continue
        if share.x != holder or share.threshold != threshold:
            malformed.add(holder)
        else:
            shares[holder] = share
    return shares, malformed


def _search(
    shares: Mapping[int, Share], verify: Callable[[bytes], bool], threshold: int, suspects: set[int]
) -> tuple[bytes, set[int]] | None:
    """A verified secret and the holders whose shares are off its polynomial, or None."""
    order = sorted(x for x in shares if x not in suspects)
    order += sorted(x for x in shares if x in suspects)
    if len(order) < threshold:
        return None
    tried: set[frozenset[int]] = set()
    for subset in _candidates(order, threshold):
        key = frozenset(subset)
        if key in tried:
            continue
        tried.add(key)
        if len(tried) > MAX_SEARCH_ATTEMPTS:
            return None
        secret = _try([shares[x] for x in subset], verify)
        if secret is None:
            continue
        # The verified subset pins the polynomial: a share x is on it exactly when
        # swapping x for one member of the subset gives the same secret back.
        base = [shares[x] for x in subset[:-1]]
        found = secret
        bad = {x for x in shares if x not in key and _try([*base, shares[x]], found.__eq__) is None}
        return found, bad
    return None


def _fast_path(group: Sequence[_Job], holders: tuple[int, ...]) -> list[bytes | None]:
    """Every secret of ``group`` from the records of ``holders`` (the same t holders for
    all), with one Lagrange vector; None for a secret whose records are not consistent
    shares of one sharing or that fails verification."""
    t, count = len(holders), len(group)
    blob = b"".join(job.records[x] for x in holders for job in group)
    parsed = parse_records(np.frombuffer(blob, dtype=np.uint8).reshape(t * count, SHARE_BYTES))
    consistent = parsed.valid.reshape(t, count).all(axis=0)
    consistent &= (parsed.thresholds.reshape(t, count) == t).all(axis=0)
    expected_xs = np.asarray(holders, dtype=np.int64)[:, None]
    consistent &= (parsed.xs.reshape(t, count) == expected_xs).all(axis=0)
    ids = parsed.sharing_ids.reshape(t, count, -1)
    consistent &= (ids == ids[0]).all(axis=(0, 2))
    secrets = limbs_to_secrets(interpolate(parsed.values.reshape(t, count, LIMBS), holders))
    return [
        secret if ok and secret is not None and job.verify(secret) else None
        for job, secret, ok in zip(group, secrets, consistent.tolist(), strict=True)
    ]


def plan_unmasking(
    config: ProtocolConfig,
    sharers: frozenset[int],
    survivors: frozenset[int],
    candidates: frozenset[int],
    signatures: Mapping[int, bytes],
) -> dict[int, UnmaskingRequest]:
    """The Unmasking requests, by recipient, for the ``candidates`` that will accept them.

    ``sharers`` is U2, ``survivors`` U3, ``candidates`` U3 (semi-honest) or the clients
    that confirmed U3 with ``signatures`` (active). A candidate is asked when its
    neighbourhood keeps t survivors (and, active, t confirmed members): a client refuses
    otherwise. Each is told, within its neighbourhood, who survived and who dropped after
    sharing. Raises ProtocolAbort when some secret of U2 would have fewer than t holders
    among the clients asked.
    """
    t = config.threshold
    active = config.mode == ACTIVE
    responders = {
        client
        for client in candidates
        if len(config.holders_of(client) & survivors) >= t
        and (not active or len(config.holders_of(client) & candidates) >= t)
    }
    for owner in sorted(sharers):
        available = len(config.holders_of(owner) & responders)
        if available < t:
            raise ProtocolAbort(
                f"client {owner}'s secret has {available} holders left, fewer than t = {t}"
            )
    dropped = sharers - survivors
    requests: dict[int, UnmaskingRequest] = {}
    for client in sorted(responders):
        neighbours = config.neighbours_of(client)
        confirmed = sorted(neighbours & candidates) if active else []
        requests[client] = UnmaskingRequest(
            SERVER_ID,
            client,
            config.session_id,
            tuple(sorted(config.holders_of(client) & survivors)),
            tuple(sorted(neighbours & dropped)),
            tuple(PeerSignature(peer, signatures[peer]) for peer in confirmed),
        )
    return requests


def reconstruct_all(
    config: ProtocolConfig,
    adverts: Mapping[int, AdvertiseKeys],
    revealed: RevealedShares,
    survivors: frozenset[int],
    dropped: frozenset[int],
) -> tuple[dict[int, bytes], dict[int, bytes], dict[int, list[str]]]:
    """Verified b_v for every survivor and s_v^SK for every dropped client, plus faults.

    Returns ``(self_seeds, mask_keys, faults)`` where faults maps a holder to the shares
    it revealed that are malformed or off the owner's polynomial. Raises ProtocolAbort
    when a secret has fewer than t shares or no verified reconstruction within the search
    budget.
    """
    t = config.threshold
    jobs: list[_Job] = []
    for owners, kind, table in (
        (survivors, SELF_MASK, revealed.self_mask),
        (dropped, MASK_KEY, revealed.mask_key),
    ):
        for owner in sorted(owners):
            records = table.get(owner, {})
            if len(records) < t:
                raise ProtocolAbort(
                    f"only {len(records)} < t = {t} shares of client {owner}'s {kind} arrived"
                )
            jobs.append(_Job(owner, kind, records, _verifier(config, adverts[owner], kind)))
    results: dict[tuple[int, str], bytes] = {}
    failed: list[_Job] = []
    groups: dict[tuple[int, ...], list[_Job]] = {}
    for job in jobs:
        groups.setdefault(tuple(sorted(job.records)[:t]), []).append(job)
    for holders, group in groups.items():
        for job, secret in zip(group, _fast_path(group, holders), strict=True):
            if secret is None:
                failed.append(job)
            else:
                results[job.owner, job.kind] = secret
    faults: dict[int, list[str]] = {}
    suspects: set[int] = set()
    for job in failed:
        shares, malformed = _parse_shares(job, t)
        found = _search(shares, job.verify, t, suspects)
        if found is None:
            raise ProtocolAbort(
                f"no verified reconstruction of client {job.owner}'s {job.kind} exists"
            )
        results[job.owner, job.kind], off_polynomial = found
        for holder in sorted(malformed | off_polynomial):
            suspects.add(holder)
            what = "a malformed share" if holder in malformed else "a share off the polynomial"
            faults.setdefault(holder, []).append(
                f"revealed {what} of client {job.owner}'s {job.kind} (or was dealt one)"
            )
    self_seeds = {owner: results[owner, SELF_MASK] for owner in survivors}
    mask_keys = {owner: results[owner, MASK_KEY] for owner in dropped}
    return self_seeds, mask_keys, faults


def remove_masks(
    acc: np.ndarray,
    config: ProtocolConfig,
    adverts: Mapping[int, AdvertiseKeys],
    self_seeds: Mapping[int, bytes],
    mask_keys: Mapping[int, bytes],
    *,
    threads: int | None = None,
) -> None:
    """Subtract from ``acc`` (the sum of the survivors' masked inputs) every survivor's
    self mask and the pairwise masks between survivors and dropped clients, in place.

    Guarantees: on return ``acc`` is the survivors' plain sum mod 2^bits. Raises nothing
    for verified inputs (keys were checked at advertisement and reconstruction).
    """
    session = config.session_id
    apply_masks(
        acc,
        bits=config.bits,
        domain=domain(session, "self"),
        sub_seeds=[self_seeds[v] for v in sorted(self_seeds)],
        threads=threads,
    )
    add_seeds: list[bytes] = []
    sub_seeds: list[bytes] = []
    for owner in sorted(mask_keys):
        keys = KeyPair.from_private_bytes(mask_keys[owner], party=owner)
        for survivor in sorted(config.neighbours_of(owner) & self_seeds.keys()):
            seed = agree(
                keys,
                adverts[survivor].mask_public_key,
                purpose=Purpose.MASK_SEED,
                session_id=session,
                own_id=owner,
                peer_id=survivor,
            )
            # The survivor added sign(survivor, owner) * PRG(seed): take it back out.
            (sub_seeds if pairwise_sign(survivor, owner) > 0 else add_seeds).append(seed)
    if add_seeds or sub_seeds:
        apply_masks(
            acc,
            bits=config.bits,
            domain=domain(session, "pairwise"),
            add_seeds=add_seeds,
            sub_seeds=sub_seeds,
            threads=threads,
        )
