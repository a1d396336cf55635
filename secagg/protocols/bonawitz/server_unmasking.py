"""Round 4 on the server: check the revealed shares, reconstruct, remove the masks.

Role: server, Unmasking (round 4), and the planning of its requests (end of round 2 or 3).

Theory of operation. The server needs one secret per client of U2: b_v for every survivor
(v in U3, its self mask is in the sum) and s_v^SK for every client that dropped after
sharing (v in U2 \\ U3, its pairwise masks with the survivors are in the sum).

* Shares arrive in shamir's compact form (limbs only): the holder is the x coordinate,
  the threshold is the session's and the sharing is the owner's secret of the list the
  share came in, so a share cannot claim to belong elsewhere.
* Reconstruction is batched: secrets whose first ``t`` holders are the same set are
  parsed in bulk and interpolated with one Lagrange vector (:mod:`secagg.shamir.batch`, over
  :func:`secagg.shamir.lagrange_coefficients_at_zero`, cached per holder set; plain
  SecAgg has a single set).
* Every secret is verified against what its owner published in AdvertiseKeys: b_v against
  the SHA-256 commitment, s_v^SK against the mask public key. A secret that fails is
  decoded as a Reed-Solomon codeword (:mod:`secagg.shamir.decoding`: up to ``(h - t) // 2`` wrong
  shares among ``h`` are located in O(h^2), whoever holds them), with a bounded search as
  the last resort; the shares off the verified polynomial are attributed to their holders,
  and the other failed secrets go back to the bulk path without them. Only when no
  verified reconstruction exists does the server abort.
* What a holder did wrong comes back as a typed :class:`~secagg.protocols.faults.Fault`
  (``BAD_SHARE``: off the polynomial, ``MALFORMED_SHARE``, ``INVALID_CONTENT``: a response
  that does not answer what was asked) for the server's fault log; nothing here raises
  for a peer's misbehaviour.
* Masks are regenerated with :func:`secagg.masking.apply_masks` over all seeds at once (one
  call per PRG domain), on its thread pool.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from secagg.errors import DecodeError, ExclusionReason, ProtocolAbort
from secagg.keys import KeyPair, Purpose, agree
from secagg.masking import apply_masks, pairwise_sign
from secagg.prg import domain
from secagg.protocols.base import SERVER_ID
from secagg.protocols.bonawitz.bundles import clamp_scalar, self_mask_commitment
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.messages import (
    ROUND_UNMASKING,
    AdvertiseKeys,
    PeerSignature,
    UnmaskingRequest,
    UnmaskingResponse,
)
from secagg.protocols.faults import Fault
from secagg.shamir import LIMB_SHARE_BYTES, LIMBS, parse_limb_shares
from secagg.shamir.batch import interpolate, limbs_to_secrets
from secagg.shamir.decoding import evaluate_at, locate_errors

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
    """The share records collected in Unmasking: secret owner -> holder -> compact share
    (:func:`secagg.shamir.pack_limb_shares` bytes).

    Records are kept as bytes and parsed in bulk at reconstruction (:mod:`secagg.shamir.batch`).
    """

    self_mask: dict[int, dict[int, bytes]] = field(default_factory=dict)
    mask_key: dict[int, dict[int, bytes]] = field(default_factory=dict)

    def record(
        self, response: UnmaskingResponse, survivors: frozenset[int], dropped: frozenset[int]
    ) -> list[Fault]:
        """Store the shares of one response whose holder was asked about ``survivors``
        (b shares) and ``dropped`` (s^SK shares); return the faults found.

        Guarantees: a response whose owners do not partition what was asked is discarded
        whole (``INVALID_CONTENT``); a share record of the wrong size is discarded alone
        (``MALFORMED_SHARE``; a record that does not parse is caught at reconstruction).
        Nothing raises: faults are returned, typed.
        """
        holder = response.sender
        asked_self = {item.owner for item in response.self_mask_shares}
        asked_key = {item.owner for item in response.key_shares}
        unreadable = set(response.unreadable)
        if (
            len(asked_self) != len(response.self_mask_shares)
            or len(asked_key) != len(response.key_shares)
            or asked_self & unreadable
            or asked_key & unreadable
            or asked_self | (unreadable & survivors) != survivors
            or asked_key | (unreadable & dropped) != dropped
            or holder in unreadable
        ):
            return [
                Fault(
                    ExclusionReason.INVALID_CONTENT,
                    ROUND_UNMASKING,
                    "an unmasking response that does not answer what was asked (discarded)",
                )
            ]
        faults: list[Fault] = []
        for items, table in (
            (response.self_mask_shares, self.self_mask),
            (response.key_shares, self.mask_key),
        ):
            for owner, share in items:
                if len(share) == LIMB_SHARE_BYTES:
                    table.setdefault(owner, {})[holder] = share
                else:
                    faults.append(
                        Fault(
                            ExclusionReason.MALFORMED_SHARE,
                            ROUND_UNMASKING,
                            f"a malformed share of client {owner}'s secret",
                        )
                    )
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


def _candidates(order: list[int], threshold: int) -> Iterator[tuple[int, ...]]:
    """Last-resort t-subsets of ``order`` (trusted rows first): every single swap of one
    of the first t for a spare, then all combinations in order."""
    first = tuple(order[:threshold])
    for left_out in first:
        for spare in order[threshold:]:
            yield (*(x for x in first if x != left_out), spare)
    yield from itertools.combinations(order, threshold)


@dataclass(frozen=True)
class _Sharing:
    """The well-formed rows of one sharing id in one secret's parsed records."""

    holders: np.ndarray  # int64, x of each row
    values: np.ndarray  # int64, (rows, LIMBS)
    order: list[int]  # row indices, holders not yet caught lying first

    def secret(self, base: Sequence[int], verify: Callable[[bytes], bool]) -> bytes | None:
        xs = self.holders[list(base)].tolist()
        limbs = interpolate(self.values[list(base)][:, None, :], xs)
        secret = limbs_to_secrets(limbs)[0]
        return secret if secret is not None and verify(secret) else None

    def off(self, base: Sequence[int]) -> list[int]:
        """Rows off the polynomial through the ``base`` rows."""
        used = set(base)
        rest = [row for row in range(self.holders.shape[0]) if row not in used]
        evaluated = evaluate_at(
            self.holders[list(base)], self.values[list(base)], self.holders[rest]
        )
        agree = (evaluated == self.values[rest]).all(axis=1).tolist()
        return [row for row, ok in zip(rest, agree, strict=True) if not ok]

    def bases(self, threshold: int) -> Iterator[tuple[int, ...]]:
        """Candidate t-row bases: the first t, then the rows a Reed-Solomon decoding keeps,
        then a bounded enumeration."""
        yield tuple(self.order[:threshold])
        off = locate_errors(self.holders, self.values, threshold)
        if off is not None:
            kept = [row for row in self.order if not off[row]]
            yield tuple(kept[:threshold])
        yield from itertools.islice(_candidates(self.order, threshold), MAX_SEARCH_ATTEMPTS)


def _recover(
    sharing: _Sharing, verify: Callable[[bytes], bool], threshold: int
) -> tuple[bytes, list[int]] | None:
    """A verified secret and the rows to blame, or None.

    A verified base can still hold wrong shares whose errors cancel at zero (two colluding
    holders can arrange it), so the polynomial through it is only used to blame when it is
    the unique best explanation: two verified polynomials agree on at most t - 2 non-zero
    points, so with ``k`` rows off one of them any other leaves at least
    ``rows - (t - 2) - k`` off; blame only when ``2k < rows - t + 2``. Otherwise the next
    candidate base is tried, and a verified secret is returned without blame at the end.
    """
    rows = sharing.holders.shape[0]
    found: bytes | None = None
    tried: set[frozenset[int]] = set()
    for base in sharing.bases(threshold):
        if frozenset(base) in tried:
            continue
        tried.add(frozenset(base))
        secret = sharing.secret(base, verify)
        if secret is None:
            continue
        found = secret
        off = sharing.off(base)
        if 2 * len(off) < rows - threshold + 2:
            return found, off
        if len(tried) > 2:  # past the decoded base: keep the secret, blame no one
            break
    return None if found is None else (found, [])


def _slow_path(
    job: _Job, threshold: int, suspects: set[int]
) -> tuple[bytes, set[int], set[int]] | None:
    """Reconstruct one secret whose bulk path failed: ``(secret, malformed, off)`` with the
    holders whose record is malformed and those whose share is off its polynomial, or None
    when no verified reconstruction is found."""
    holders = sorted(job.records)
    valid, values = parse_limb_shares([job.records[x] for x in holders])
    malformed = {holders[row] for row in np.flatnonzero(~valid).tolist()}
    rows = np.flatnonzero(valid).tolist()
    if len(rows) < threshold:
        return None
    xs = np.asarray(holders, dtype=np.int64)
    order = sorted(range(len(rows)), key=lambda i: (holders[rows[i]] in suspects, i))
    found = _recover(_Sharing(xs[rows], values[rows], order), job.verify, threshold)
    if found is None:
        return None
    secret, off_rows = found
    return secret, malformed, {holders[rows[i]] for i in off_rows}


def _fast_path(group: Sequence[_Job], holders: tuple[int, ...]) -> list[bytes | None]:
    """Every secret of ``group`` from the records of ``holders`` (the same t holders for
    all), with one Lagrange vector; None for a secret with a malformed record or that
    fails verification."""
    t, count = len(holders), len(group)
    blob = b"".join(job.records[x] for x in holders for job in group)
    records = np.frombuffer(blob, dtype=np.uint8).reshape(t * count, LIMB_SHARE_BYTES)
    valid, values = parse_limb_shares(records)
    consistent = np.all(valid.reshape(t, count), axis=0).reshape(count).tolist()
    secrets = limbs_to_secrets(interpolate(values.reshape(t, count, LIMBS), holders))
    return [
        secret if ok and secret is not None and job.verify(secret) else None
        for job, secret, ok in zip(group, secrets, consistent, strict=True)
    ]


def _bulk(
    jobs: Sequence[_Job], threshold: int, suspects: set[int], results: dict[tuple[int, str], bytes]
) -> list[_Job]:
    """Reconstruct ``jobs`` in bulk, each from its first t holders (those caught lying
    last); store the verified secrets in ``results`` and return the jobs that failed."""
    groups: dict[tuple[int, ...], list[_Job]] = {}
    for job in jobs:
        order = sorted(job.records)
        if suspects:
            order = [x for x in order if x not in suspects] + [x for x in order if x in suspects]
        groups.setdefault(tuple(sorted(order[:threshold])), []).append(job)
    failed: list[_Job] = []
    for holders, group in groups.items():
        for job, secret in zip(group, _fast_path(group, holders), strict=True):
            if secret is None:
                failed.append(job)
            else:
                results[job.owner, job.kind] = secret
    return failed


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
) -> tuple[dict[int, bytes], dict[int, bytes], dict[int, list[Fault]]]:
    """Verified b_v for every survivor and s_v^SK for every dropped client, plus faults.

    Returns ``(self_seeds, mask_keys, faults)`` where faults maps a holder to the shares
    it revealed that are malformed (``MALFORMED_SHARE``) or off the owner's polynomial
    (``BAD_SHARE``). Raises ProtocolAbort
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
    faults: dict[int, list[Fault]] = {}
    suspects: set[int] = set()
    pending = _bulk(jobs, t, suspects, results)
    while pending:
        job = pending.pop(0)
        found = _slow_path(job, t, suspects)
        if found is None:
            raise ProtocolAbort(
                f"no verified reconstruction of client {job.owner}'s {job.kind} exists"
            )
        results[job.owner, job.kind], malformed, off_polynomial = found
        for holder in sorted(malformed | off_polynomial):
            if holder in malformed:
                reason, what = ExclusionReason.MALFORMED_SHARE, "a malformed share"
            else:
                reason, what = ExclusionReason.BAD_SHARE, "a share off the polynomial"
            faults.setdefault(holder, []).append(
                Fault(
                    reason,
                    ROUND_UNMASKING,
                    f"revealed {what} of client {job.owner}'s {job.kind} (or was dealt one)",
                )
            )
        caught = (malformed | off_polynomial) - suspects
        if caught:
            # The other failed secrets most likely failed on these holders: back to bulk.
            suspects |= caught
            pending = _bulk(pending, t, suspects, results)
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
