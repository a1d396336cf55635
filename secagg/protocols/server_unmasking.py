"""Round 4 on the server: check the revealed shares, reconstruct, remove the masks.

Theory of operation. The server needs one secret per client of U2: b_v for every survivor
(v in U3, its self mask is in the sum) and s_v^SK for every client that dropped after
sharing (v in U2 \\ U3, its pairwise masks with the survivors are in the sum).

* Reconstruction is batched: secrets whose first ``t`` trusted holders are the same set
  go through one :func:`secagg.shamir.reconstruct_secrets` call, so the Lagrange
  coefficients are computed once per holder set (plain SecAgg has a single set).
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
from secagg.protocols.bundles import self_mask_commitment
from secagg.protocols.config import ProtocolConfig
from secagg.protocols.messages import AdvertiseKeys, RevealedShare, UnmaskingResponse
from secagg.shamir import Share, reconstruct_secret, reconstruct_secrets

__all__ = ["MAX_SEARCH_ATTEMPTS", "RevealedShares", "reconstruct_all", "remove_masks"]

#: Upper bound on reconstructions tried for one secret whose first attempt failed.
MAX_SEARCH_ATTEMPTS = 2048

SELF_MASK = "self mask"
MASK_KEY = "mask key"


@dataclass
class RevealedShares:
    """The shares the server collected in Unmasking: secret owner -> holder -> share."""

    self_mask: dict[int, dict[int, Share]] = field(default_factory=dict)
    mask_key: dict[int, dict[int, Share]] = field(default_factory=dict)

    def record(
        self,
        config: ProtocolConfig,
        response: UnmaskingResponse,
        survivors: frozenset[int],
        dropped: frozenset[int],
    ) -> list[str]:
        """Store the shares of one response whose holder was asked about ``survivors``
        (b shares) and ``dropped`` (s^SK shares); return the faults found.

        Guarantees: a response whose owners do not partition what was asked is discarded
        whole; a share that does not parse, or is not at the holder's x with threshold t,
        is discarded alone. Nothing raises: faults are returned as text.
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
            for item in items:
                share = _parse(item, holder, config.threshold)
                if share is None:
                    faults.append(f"a malformed share of client {item.owner}'s secret")
                else:
                    table.setdefault(item.owner, {})[holder] = share
        return faults


def _parse(item: RevealedShare, holder: int, threshold: int) -> Share | None:
    try:
        share = Share.from_bytes(item.share)
    except (DecodeError, ShareError, ValueError):
        return None
    if share.x != holder or share.threshold != threshold:
        return None
    return share


@dataclass(frozen=True)
class _Job:
    owner: int
    kind: str
    shares: Mapping[int, Share]
    verify: Callable[[bytes], bool]


def _verifier(config: ProtocolConfig, advert: AdvertiseKeys, kind: str) -> Callable[[bytes], bool]:
    if kind == SELF_MASK:

        def check_self_mask(secret: bytes) -> bool:
            commitment = self_mask_commitment(config.session_id, advert.sender, secret)
            return hmac.compare_digest(commitment, advert.self_mask_commitment)

        return check_self_mask

    def check_mask_key(secret: bytes) -> bool:
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


def _search(job: _Job, threshold: int, suspects: set[int]) -> tuple[bytes, set[int]] | None:
    """A verified secret and the holders whose shares are off its polynomial, or None."""
    order = sorted(x for x in job.shares if x not in suspects)
    order += sorted(x for x in job.shares if x in suspects)
    tried: set[frozenset[int]] = set()
    for subset in _candidates(order, threshold):
        key = frozenset(subset)
        if key in tried:
            continue
        tried.add(key)
        if len(tried) > MAX_SEARCH_ATTEMPTS:
            return None
        secret = _try([job.shares[x] for x in subset], job.verify)
        if secret is None:
            continue
        # The verified subset pins the polynomial: a share x is on it exactly when
        # swapping x for one member of the subset gives the same secret back.
        base = [job.shares[x] for x in subset[:-1]]
        found = secret
        bad = {
            x
            for x in job.shares
            if x not in key and _try([*base, job.shares[x]], found.__eq__) is None
        }
        return found, bad
    return None


def reconstruct_all(
    config: ProtocolConfig,
    adverts: Mapping[int, AdvertiseKeys],
    revealed: RevealedShares,
    survivors: frozenset[int],
    dropped: frozenset[int],
) -> tuple[dict[int, bytes], dict[int, bytes], dict[int, list[str]]]:
    """Verified b_v for every survivor and s_v^SK for every dropped client, plus faults.

    Returns ``(self_seeds, mask_keys, faults)`` where faults maps a holder to the shares
    it revealed that are off the owner's polynomial. Raises ProtocolAbort when a secret
    has fewer than t shares or no verified reconstruction within the search budget.
    """
    t = config.threshold
    jobs: list[_Job] = []
    for owners, kind, table in (
        (survivors, SELF_MASK, revealed.self_mask),
        (dropped, MASK_KEY, revealed.mask_key),
    ):
        for owner in sorted(owners):
            shares = table.get(owner, {})
            if len(shares) < t:
                raise ProtocolAbort(
                    f"only {len(shares)} < t = {t} shares of client {owner}'s {kind} arrived"
                )
            jobs.append(_Job(owner, kind, shares, _verifier(config, adverts[owner], kind)))
    results: dict[tuple[int, str], bytes] = {}
    failed: list[_Job] = []
    groups: dict[tuple[int, ...], list[_Job]] = {}
    for job in jobs:
        groups.setdefault(tuple(sorted(job.shares)[:t]), []).append(job)
    for holders, group in groups.items():
        try:
            secrets = reconstruct_secrets({x: [job.shares[x] for job in group] for x in holders})
        except (ShareError, DecodeError, ValueError):
            failed.extend(group)
            continue
        for job, secret in zip(group, secrets, strict=True):
            if job.verify(secret):
                results[job.owner, job.kind] = secret
            else:
                failed.append(job)
    faults: dict[int, list[str]] = {}
    suspects: set[int] = set()
    for job in failed:
        found = _search(job, t, suspects)
        if found is None:
            raise ProtocolAbort(
                f"no verified reconstruction of client {job.owner}'s {job.kind} exists"
            )
        results[job.owner, job.kind], bad = found
        for holder in sorted(bad):
            suspects.add(holder)
            faults.setdefault(holder, []).append(
                f"revealed a share of client {job.owner}'s {job.kind} that is off the "
                "polynomial (or was dealt one)"
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
