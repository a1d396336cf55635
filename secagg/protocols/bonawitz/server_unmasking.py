"""Unmasking on the server: check every revealed share, reconstruct, remove the masks.

Role: server, Unmasking (and the planning of its requests, end of MaskedInput or
ConsistencyCheck).

Theory of operation. The server needs one secret per confirmed client (the dealers that
passed ShareCheck): b_v for every survivor (v in U3, its self mask is in the sum) and
s_v^SK for every client that dropped after ShareCheck (its pairwise masks with the
survivors are in the sum).

* A holder reveals each share in shamir's compact form (limbs only: x is the holder, the
  threshold the session's, the sharing the owner's secret of the list it came in) and the
  key of the box it came in (:mod:`.bundles`). The fast path uses the plain shares: parsed
  in bulk, every secret rebuilt from its first t shares with one Lagrange vector per
  holder set (:mod:`secagg.shamir.batch`) and verified against what its owner published
  (b_v: the SHA-256 commitment; s_v^SK: the advertised key).
* Every share is checked, not only the t used: a random combination of each share's limbs
  is tested against the code of its holder set (:func:`secagg.protocols.bonawitz.dealing.
  inconsistent`, O(r) per secret), so a share off the polynomial is seen wherever it is.
* A secret that fails either test has its shares authenticated: the server opens the box
  of each with the revealed key (boxes it stored in ShareKeys). A key that does not open
  its box, or a share other than the box's, is the holder's lie (``BAD_SHARE``,
  ``MALFORMED_SHARE``) and the box's share replaces it. Holders caught once are
  authenticated first in every other failed secret (so a liar costs one box per secret,
  not all of them).
* Once every share of a secret is authentic, what is still wrong is the dealer's
  (:func:`reconstruct_all`): shares off one polynomial (``INCONSISTENT_DEALING``; the
  shares a Reed-Solomon decoding keeps, or a bounded search, may still rebuild the
  published secret), a consistent b_v that is not the committed seed
  (``WRONG_COMMITMENT``: the server uses the seed its holders hold), a consistent
  s_v^SK that is not the advertised key (``WRONG_DEALT_KEY``: the survivors that masked
  with v are asked the fallback wave, :func:`pair_seed_of`). An honest holder is never
  blamed for its dealer's share: blame needs the holder's own key or share.
* Masks are regenerated with :func:`secagg.masking.apply_masks` over all seeds at once (one
  call per PRG domain), on its thread pool.
"""

from __future__ import annotations

import hmac
import itertools
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from secagg.curve25519 import verify_shared_secret
from secagg.errors import DecodeError, ExclusionReason, ProtocolAbort
from secagg.keys import KeyPair, Purpose, agree, derive_pair_key
from secagg.masking import apply_masks, pairwise_sign
from secagg.prg import domain
from secagg.protocols.base import SERVER_ID
from secagg.protocols.bonawitz.bundles import (
    SecretKind,
    clamp_scalar,
    decode_mask_key_box,
    decode_self_mask_box,
    open_box,
    self_mask_commitment,
)
from secagg.protocols.bonawitz.config import ACTIVE, ProtocolConfig
from secagg.protocols.bonawitz.dealing import inconsistent
from secagg.protocols.bonawitz.messages import (
    ROUND_UNMASKING,
    AdvertiseKeys,
    PairSecret,
    PeerSignature,
    UnmaskingRequest,
    UnmaskingResponse,
    proof_context,
)
from secagg.protocols.bonawitz.server_check import BoxStore
from secagg.protocols.faults import Fault
from secagg.shamir import LIMB_BITS, LIMBS, PRIME, parse_limb_shares
from secagg.shamir.batch import interpolate, limbs_to_secrets
from secagg.shamir.decoding import locate_errors

__all__ = [
    "MAX_SEARCH_ATTEMPTS",
    "Reconstruction",
    "RevealedShares",
    "pair_seed_of",
    "plan_unmasking",
    "reconstruct_all",
    "remove_masks",
]

#: Upper bound on t-subsets tried for one secret whose authentic shares disagree.
MAX_SEARCH_ATTEMPTS = 2048

_NAMES = {SecretKind.SELF_MASK: "self-mask seed", SecretKind.MASK_KEY: "mask key"}


@dataclass
class RevealedShares:
    """The share records collected in Unmasking: kind -> owner -> holder -> (compact
    share, box key). Kept as bytes; parsed in bulk at reconstruction."""

    records: dict[SecretKind, dict[int, dict[int, tuple[bytes, bytes]]]] = field(
        default_factory=lambda: {SecretKind.SELF_MASK: {}, SecretKind.MASK_KEY: {}}
    )

    def record(
        self, response: UnmaskingResponse, survivors: frozenset[int], dropped: frozenset[int]
    ) -> list[Fault]:
        """Store the shares of one response whose holder was asked about ``survivors``
        (b shares) and ``dropped`` (s^SK shares); return the faults found.

        Guarantees: a response whose owners are not exactly what was asked is discarded
        whole (``INVALID_CONTENT``). Sizes were checked by the decoder; contents are
        checked at reconstruction. Nothing raises: faults are returned, typed.
        """
        holder = response.sender
        self_owners = [item.owner for item in response.self_mask_shares]
        key_owners = [item.owner for item in response.key_shares]
        if (
            len(set(self_owners)) != len(self_owners)
            or len(set(key_owners)) != len(key_owners)
            or set(self_owners) != survivors
            or set(key_owners) != dropped
        ):
            return [
                Fault(
                    ExclusionReason.INVALID_CONTENT,
                    ROUND_UNMASKING,
                    "an unmasking response that does not answer what was asked (discarded)",
                )
            ]
        for kind, items in (
            (SecretKind.SELF_MASK, response.self_mask_shares),
            (SecretKind.MASK_KEY, response.key_shares),
        ):
            table = self.records[kind]
            for owner, share, key in items:
                table.setdefault(owner, {})[holder] = (share, key)
        return []


@dataclass
class _Job:
    """One secret to rebuild: its share rows, which are usable and which are authentic."""

    owner: int
    kind: SecretKind
    holders: list[int]
    shares: list[bytes]
    keys: list[bytes]
    limbs: np.ndarray  # (r, LIMBS) int64
    ok: np.ndarray  # bool (r,): a usable row
    authentic: np.ndarray  # bool (r,): the row was read from its box
    verify: Callable[[bytes], bool]
    secret: bytes | None = None
    done: bool = False

    @property
    def name(self) -> str:
        return f"client {self.owner}'s {_NAMES[self.kind]}"


@dataclass
class Reconstruction:
    """What Unmasking rebuilt: ``self_seeds`` (every survivor's b_v), ``mask_keys`` (the
    dropped clients whose s_v^SK rebuilt to their key), ``fallback`` (the dropped clients
    whose did not: their pairwise masks need the fallback wave) and ``faults`` by party."""

    self_seeds: dict[int, bytes]
    mask_keys: dict[int, bytes]
    fallback: frozenset[int]
    faults: dict[int, list[Fault]]


def _verifier(config: ProtocolConfig, advert: AdvertiseKeys, mask_public: bytes,
              kind: SecretKind) -> Callable[[bytes], bool]:
    if kind is SecretKind.SELF_MASK:

        def check_self_mask(secret: bytes) -> bool:
            commitment = self_mask_commitment(config.session_id, advert.sender, secret)
            return hmac.compare_digest(commitment, advert.self_mask_commitment)

        return check_self_mask

    def check_mask_key(secret: bytes) -> bool:
        if secret != clamp_scalar(secret):  # clients share the clamped form only
            return False
        public = KeyPair.from_private_bytes(secret).public_bytes
        return hmac.compare_digest(public, mask_public)

    return check_mask_key


def _seed_of(limbs: np.ndarray) -> bytes:
    """The 32 bytes of interpolated limbs read as sum(limb_i 2^(20 i)) mod 2^256: every
    limb vector names one seed (a dealer that dealt out-of-range limbs chose this one)."""
    value = sum(int(limb) << (LIMB_BITS * i) for i, limb in enumerate(limbs.tolist()))
    return (value % (1 << 256)).to_bytes(32, "little")


class _Faults:
    def __init__(self) -> None:
        self.by_party: dict[int, list[Fault]] = {}

    def add(self, party: int, reason: ExclusionReason, detail: str) -> None:
        self.by_party.setdefault(party, []).append(Fault(reason, ROUND_UNMASKING, detail))


def _authenticate(
    config: ProtocolConfig, store: BoxStore, job: _Job, rows: list[int], faults: _Faults
) -> set[int]:
    """Read ``rows`` of ``job`` from their boxes; return the holders caught lying."""
    liars: set[int] = set()
    for row in rows:
        if job.authentic[row]:
            continue
        holder = job.holders[row]
        box = store.box(job.owner, holder, job.kind)
        plaintext = open_box(job.keys[row], box, job.kind)
        job.authentic[row] = True
        if plaintext is None:
            job.ok[row] = False
            liars.add(holder)
            faults.add(
                holder,
                ExclusionReason.BAD_SHARE,
                f"revealed a key that does not open its box of {job.name}",
            )
            continue
        where = {"session_id": config.session_id, "dealer": job.owner, "holder": holder,
                 "threshold": config.threshold}
        try:
            if job.kind is SecretKind.SELF_MASK:
                share = decode_self_mask_box(plaintext, **where)[0]  # type: ignore[arg-type]
            else:
                share = decode_mask_key_box(plaintext, **where)  # type: ignore[arg-type]
        except DecodeError:
            # A malformed box its holder accepted in ShareCheck instead of complaining.
            job.ok[row] = False
            liars.add(holder)
            faults.add(
                holder,
                ExclusionReason.BAD_CHECK,
                f"accepted a malformed box of {job.name} in ShareCheck",
            )
            continue
        box_limbs = np.asarray(share.values, dtype=np.int64)
        if not (job.ok[row] and np.array_equal(box_limbs, job.limbs[row])):
            liars.add(holder)
            reason = ExclusionReason.BAD_SHARE if job.ok[row] else ExclusionReason.MALFORMED_SHARE
            faults.add(holder, reason, f"revealed a share of {job.name} other than its box's")
        job.limbs[row] = box_limbs
        job.ok[row] = True
    return liars


def _base(job: _Job, threshold: int, suspects: set[int]) -> list[int] | None:
    """The first ``threshold`` usable rows, authentic ones and non-suspects first."""
    rows = [row for row in range(len(job.holders)) if job.ok[row]]
    rows.sort(key=lambda row: (not job.authentic[row], job.holders[row] in suspects, row))
    return sorted(rows[:threshold]) if len(rows) >= threshold else None


def _attempt(jobs: list[_Job], threshold: int, suspects: set[int]) -> list[_Job]:
    """Rebuild ``jobs`` from their bases in bulk, check every usable row against the code;
    return the jobs that failed (no base, unverified, or some row off)."""
    groups: dict[tuple[int, ...], list[tuple[_Job, list[int]]]] = {}
    failed: list[_Job] = []
    for job in jobs:
        base = _base(job, threshold, suspects)
        if base is None:
            failed.append(job)
            continue
        holders = tuple(job.holders[row] for row in base)
        groups.setdefault(holders, []).append((job, base))
    verified: list[_Job] = []
    for holders, members in groups.items():
        values = np.stack([job.limbs[base] for job, base in members], axis=1)  # (t, jobs, L)
        secrets_ = limbs_to_secrets(interpolate(values, holders))
        for (job, _), secret in zip(members, secrets_, strict=True):
            if secret is not None and job.verify(secret):
                job.secret = secret
                verified.append(job)
            else:
                failed.append(job)
    weights = np.frombuffer(secrets.token_bytes(8 * 2 * LIMBS), dtype="<u8")
    weights = (weights % np.uint64(PRIME)).astype(np.int64).reshape(LIMBS, 2)
    records = {}
    for index, job in enumerate(verified):
        rows = np.flatnonzero(job.ok)
        combined = job.limbs[rows] @ weights % PRIME  # products < 2^42, 13 terms
        records[index] = ([job.holders[row] for row in rows.tolist()], combined)
    off = inconsistent(records, threshold)
    for index, job in enumerate(verified):
        if index in off:
            job.secret = None
            failed.append(job)
        else:
            job.done = True
    return failed


def _candidates(rows: list[int], threshold: int) -> Iterator[tuple[int, ...]]:
    """Bounded t-subsets of ``rows``: every single swap of one of the first t for a spare,
    then all combinations in order."""
    first = tuple(rows[:threshold])
    for left_out in first:
        for spare in rows[threshold:]:
            yield (*(x for x in first if x != left_out), spare)
    yield from itertools.combinations(rows, threshold)


def _secret_of(job: _Job, rows: tuple[int, ...] | list[int]) -> np.ndarray:
    holders = [job.holders[row] for row in rows]
    limbs: np.ndarray = interpolate(job.limbs[list(rows)][:, None, :], holders)[0]
    return limbs


def _dealer_path(job: _Job, threshold: int, faults: _Faults) -> None:
    """Every share of ``job`` is authentic and it still fails: the dealer's fault. Settle
    ``job.secret`` (None for a mask key that cannot be rebuilt: fallback)."""
    rows = [row for row in range(len(job.holders)) if job.ok[row]]
    job.done = True
    if len(rows) < threshold:
        job.secret = None
        return
    xs = [job.holders[row] for row in rows]
    off = locate_errors(xs, job.limbs[rows], threshold) if len(rows) > threshold else None
    consistent = len(rows) <= threshold or (off is not None and not off.any())
    first: list[int] = rows[:threshold]
    if not consistent:
        faults.add(
            job.owner,
            ExclusionReason.INCONSISTENT_DEALING,
            f"dealt shares of its {_NAMES[job.kind]} off one polynomial",
        )
        if off is not None:
            first = [row for row, bad in zip(rows, off.tolist(), strict=True) if not bad][
                :threshold
            ]
        for subset in itertools.islice(
            itertools.chain([tuple(first)], _candidates(rows, threshold)), MAX_SEARCH_ATTEMPTS
        ):
            secret = limbs_to_secrets(_secret_of(job, subset)[None, :])[0]
            if secret is not None and job.verify(secret):
                job.secret = secret
                return
    limbs = _secret_of(job, first)
    secret = limbs_to_secrets(limbs[None, :])[0]
    if secret is not None and job.verify(secret):
        job.secret = secret
        return
    if job.kind is SecretKind.SELF_MASK:
        if consistent:
            faults.add(
                job.owner,
                ExclusionReason.WRONG_COMMITMENT,
                "its self-mask commitment does not match the seed its holders hold",
            )
        job.secret = _seed_of(limbs)  # the seed its holders hold: all the sum can use
        return
    if consistent:
        faults.add(
            job.owner,
            ExclusionReason.WRONG_DEALT_KEY,
            "the mask key its holders hold does not match its advertised key",
        )
    job.secret = None


def reconstruct_all(
    config: ProtocolConfig,
    adverts: Mapping[int, AdvertiseKeys],
    mask_publics: Mapping[int, bytes],
    revealed: RevealedShares,
    store: BoxStore,
    survivors: frozenset[int],
    dropped: frozenset[int],
) -> Reconstruction:
    """b_v of every survivor and s_v^SK of every dropped client, every share checked, every
    liar and faulty dealer named (module docstring).

    Raises ProtocolAbort only when a survivor's b_v has fewer than t shares, or fewer than
    t that open (the server then cannot take its self mask out of the sum).
    """
    t = config.threshold
    jobs: list[_Job] = []
    for owners, kind in ((survivors, SecretKind.SELF_MASK), (dropped, SecretKind.MASK_KEY)):
        for owner in sorted(owners):
            records = revealed.records[kind].get(owner, {})
            holders = sorted(records)
            shares = [records[h][0] for h in holders]
            valid, limbs = parse_limb_shares(shares) if shares else (
                np.zeros(0, dtype=bool), np.zeros((0, LIMBS), dtype=np.int64))
            jobs.append(
                _Job(
                    owner, kind, holders, shares, [records[h][1] for h in holders],
                    np.array(limbs, dtype=np.int64).reshape(-1, LIMBS), valid.copy(),
                    np.zeros(len(holders), dtype=bool),
                    _verifier(config, adverts[owner], mask_publics[owner], kind),
                )
            )
    faults = _Faults()
    suspects: set[int] = set()
    for job in jobs:  # a malformed share is a lie: read its box at once
        bad = [row for row in range(len(job.holders)) if not job.ok[row]]
        suspects |= _authenticate(config, store, job, bad, faults)
    pending = jobs
    while pending:
        for job in pending:
            rows = [r for r, h in enumerate(job.holders) if h in suspects]
            suspects |= _authenticate(config, store, job, rows, faults)
        failed = _attempt(pending, t, suspects)
        pending = [job for job in failed if not job.authentic.all()]
        for job in failed:
            if job.authentic.all():
                _dealer_path(job, t, faults)
        # Read every box of failed secrets, one at a time, until one names a new liar: the
        # others then retry with the liars' boxes read first (one box each), so one liar
        # costs one secret's boxes plus one box per other secret, not all of them.
        for job in pending:
            caught = _authenticate(config, store, job, list(range(len(job.holders))), faults)
            if caught - suspects:
                suspects |= caught
                break
    self_seeds: dict[int, bytes] = {}
    mask_keys: dict[int, bytes] = {}
    fallback: set[int] = set()
    for job in jobs:
        if job.kind is SecretKind.SELF_MASK:
            if job.secret is None:
                raise ProtocolAbort(f"fewer than t = {t} shares of {job.name} can be used")
            self_seeds[job.owner] = job.secret
        elif job.secret is None:
            fallback.add(job.owner)
        else:
            mask_keys[job.owner] = job.secret
    return Reconstruction(self_seeds, mask_keys, frozenset(fallback), faults.by_party)


def plan_unmasking(
    config: ProtocolConfig,
    confirmed: frozenset[int],
    survivors: frozenset[int],
    candidates: frozenset[int],
    signatures: Mapping[int, bytes],
) -> dict[int, UnmaskingRequest]:
    """The Unmasking requests, by recipient, for the ``candidates`` that will accept them.

    ``confirmed`` are the clients that passed ShareCheck, ``survivors`` U3, ``candidates``
    U3 (semi-honest) or the clients that confirmed U3 with ``signatures`` (active). A
    candidate is asked when its neighbourhood keeps t survivors (and, active, t confirmed
    members): a client refuses otherwise. Each is told, within its neighbourhood, who
    survived and who dropped after ShareCheck. Raises ProtocolAbort when some secret
    needed would have fewer than t holders among the clients asked.
    """
    t = config.threshold
    active = config.mode == ACTIVE
    responders = {
        client
        for client in candidates
        if len(config.holders_of(client) & survivors) >= t
        and (not active or len(config.holders_of(client) & candidates) >= t)
    }
    for owner in sorted(confirmed):
        available = len(config.holders_of(owner) & responders)
        if available < t:
            raise ProtocolAbort(
                f"client {owner}'s secret has {available} holders left, fewer than t = {t}"
            )
    dropped = confirmed - survivors
    requests: dict[int, UnmaskingRequest] = {}
    for client in sorted(responders):
        neighbours = config.neighbours_of(client)
        signers = sorted(neighbours & candidates) if active else []
        requests[client] = UnmaskingRequest(
            SERVER_ID,
            client,
            config.session_id,
            tuple(sorted(config.holders_of(client) & survivors)),
            tuple(sorted(neighbours & dropped)),
            tuple(PeerSignature(peer, signatures[peer]) for peer in signers),
        )
    return requests


def pair_seed_of(
    config: ProtocolConfig,
    adverts: Mapping[int, AdvertiseKeys],
    survivor: int,
    secret: PairSecret,
) -> bytes | None:
    """The pairwise mask seed of ``survivor`` and the dropped ``secret.owner``, if the
    fallback answer proves it (their mask keys' X25519 secret); else None."""
    raw = verify_shared_secret(
        adverts[survivor].mask_public_key,
        adverts[secret.owner].mask_public_key,
        secret.shared,
        secret.proof,
        context=proof_context(config.session_id, "pair", survivor, secret.owner),
    )
    if raw is None:
        return None
    return derive_pair_key(
        raw,
        purpose=Purpose.MASK_SEED,
        session_id=config.session_id,
        client_a=survivor,
        client_b=secret.owner,
    )


def remove_masks(
    acc: np.ndarray,
    config: ProtocolConfig,
    mask_publics: Mapping[int, bytes],
    self_seeds: Mapping[int, bytes],
    mask_keys: Mapping[int, bytes],
    pair_seeds: Mapping[tuple[int, int], bytes] | None = None,
    *,
    threads: int | None = None,
) -> None:
    """Subtract from ``acc`` (the sum of the survivors' masked inputs) every survivor's
    self mask and the pairwise masks between survivors and dropped clients, in place.

    A dropped owner's masks with its surviving neighbours (each masked with it: both
    passed ShareCheck) come from its rebuilt key (``mask_keys``) or, for the owners of
    the fallback wave, from ``pair_seeds`` ((survivor, owner) -> seed). Guarantees: on
    return ``acc`` is the survivors' plain sum mod 2^bits. Raises nothing for verified
    inputs.
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
                mask_publics[survivor],
                purpose=Purpose.MASK_SEED,
                session_id=session,
                own_id=owner,
                peer_id=survivor,
            )
            # The survivor added sign(survivor, owner) * PRG(seed): take it back out.
            (sub_seeds if pairwise_sign(survivor, owner) > 0 else add_seeds).append(seed)
    for (survivor, owner), seed in sorted((pair_seeds or {}).items()):
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
