"""Threshold RLWE encryption for secure aggregation ("threshold CKKS"), in NumPy.

No single party can decrypt: a committee of ``n`` members generates a collective key, clients
encrypt under it, the server adds ciphertexts, and any ``t`` members turn the aggregate into
the sum; ``t - 1`` of them, even with the server, learn nothing about any input. The
construction is Mouchet, Troncoso-Pastoriza, Bossuat and Hubaux, "Multiparty Homomorphic
Encryption from Ring-Learning-with-Errors" (PoPETs 2021), with Lattigo's t-of-n
Thresholdizer/Combiner; the ring arithmetic is :mod:`secagg.he.rlwe`.

Theory of operation
-------------------
Ring ``R_Q = Z_Q[X]/(X^N + 1)``, ``Q`` a product of 32-bit NTT primes; plaintexts are
vectors over ``Z_t``, ``t = 2^plaintext_bits``, one value per coefficient (coefficient
encoding: ``N`` values per ciphertext).

1. Key generation. A public seed expands to the common random polynomial ``a``. Member
   ``i`` draws a ternary ``s_i`` and a centered binomial ``e_i`` and publishes
   ``p_i = -a s_i + e_i`` (:class:`PublicKeyShare`). The collective key is
   ``(p, a) = (sum_(i in K) p_i, a)`` over the set ``K`` of contributors
   (:func:`collective_public_key`), and its secret ``s = sum_(i in K) s_i`` is never
   assembled anywhere.
2. t-of-n. At setup, member ``i`` also Shamir-shares ``s_i`` over ``Z_Q`` (limb by limb,
   for all ``N`` coefficients at once): ``f_i(x) = s_i + r_1 x + ... + r_(t-1) x^(t-1)``
   with uniform ``r_k``, and sends ``f_i(x_j)`` to every other member ``j``
   (:class:`KeyShareDelivery`, for the protocol layer to seal). Member ``j``'s key share is
   ``sk_j = sum_(i in K) f_i(x_j)``, a degree ``t - 1`` sharing of ``s`` (x coordinates are
   the member ids). Dropouts during setup: the server fixes ``K`` as the members whose
   public key share and deliveries all arrived; every member that then receives the
   deliveries of all of ``K`` holds a valid share (even one outside ``K``); the others hold
   none and count as dropped. ``|K| >= t`` is required.
3. Encryption (:func:`encrypt`): ternary ``u``, binomial ``e0, e1``;
   ``c1 = a u + e1`` (the *mask*, sent in NTT form) and the *body*
   ``c0' = round(2^k (p u + e0) / Q) + m 2^(k - log2 t) mod 2^k`` with
   ``k = log2 t + ceil(log2 max_summands) + 3``: the body is compressed from ``log2 Q`` to
   ``k`` bits (a deterministic function of the usual ``c0``, so it reveals nothing more),
   and carries the message in its top bits, where noise never reaches it. Ciphertexts add
   coefficient-wise (mod ``Q`` for masks, mod ``2^k`` for bodies); the summand count is
   tracked.
4. Decryption. For an active set ``S`` (``|S| >= t``), member ``j`` returns
   ``d_j = c1 lambda_j^S sk_j + e_j`` (:class:`DecryptionShare`), with ``lambda_j^S`` its
   Lagrange coefficient at 0 and ``e_j`` uniform in ``[-2^b, 2^b)`` (smudging). Then
   ``sum_(j in S) d_j = c1 s + sum e_j``, and :func:`combine` computes
   ``t (c1 s + sum e_j) / Q + c0' / 2^(k - log2 t) = m + offset (mod t)``, rounds, and
   refuses (DecodeError) any coefficient whose ``|offset|`` exceeds 3/8: an honest
   decryption never does, a corrupted share almost surely does.

The noise bound and the smudging (all in :class:`NoiseBudget`)
---------------------------------------------------------------
A sum of ``n <= max_summands`` fresh ciphertexts decrypts (before smudging) with noise
``e_ct = U e_pk + E0 + E1 s``; :func:`secagg.he.rlwe.noise.noise_tail_bound` gives a ``B``
with ``P(|e_ct| >= B) <= 2^-64`` per coefficient, a Chernoff bound evaluated on the exact
distribution for ``n = max_summands`` and ``committee_size`` key holders (it only grows
with either). Smudging ``e_j`` uniform in ``[-2^b, 2^b)`` with ``b = ceil(log2 B) + 40``
makes ``e_ct + e_j`` and ``e_j`` at statistical distance at most
``B / 2^(b+1) + 2^-64 <= 2^-40`` per coefficient, so one honest member's share hides the key
(smudging lemma; see Asharov et al., EUROCRYPT 2012). The decoded offset is at most
``t E / Q + n t / 2^k`` with ``E = B + committee_size 2^b``; the parameters require
``t E / Q <= 1/4`` (``Q >= 4 t E``) and the body size gives ``n t / 2^k <= 1/8``, so honest
offsets stay below 3/8 and sums are exact mod ``t`` (except with probability 2^-64 per
coefficient). :meth:`ThresholdCkksParameters.choose` picks the fewest limbs that fit.

Why the message sits in the top bits. For additions only, CKKS and BFV are the same
scheme up to where the message is scaled: CKKS multiplies by ``Delta = 2^k`` (noise in the
low bits, approximate results), BFV by ``Q / t`` (noise below the message, exact results).
Secure aggregation wants exact sums mod ``2^bits`` (every other secagg protocol gives them),
so we scale like BFV. Real vectors go through :class:`secagg.encoding.FixedPoint`
(:func:`float_codec`): clip, scale, unbiased stochastic rounding into ``Z_t``; the decoded
mean is then off by at most ``1 / scale`` per value (about ``clip * max_summands / 2^31``
at 32 bits), and by nothing else.

The rule that keeps it safe
---------------------------
A member produces at most one decryption share per key share per ciphertext. Two shares
of the same ``c1`` for different active sets (different ``lambda``) reveal ``sk_j`` by
lattice reduction (Lattigo SECURITY.md; ePrint 2025/409). :class:`CommitteeMember`
therefore remembers the digest of every ciphertext (chunk) it decrypted and the active
set it used, and raises :class:`MaliciousRequestError` for the same ciphertext with
another set, for a second aggregate under the same request id, and for an aggregate of
fewer than ``min_summands`` (or more than ``max_summands``) summands. Its smudging noise is
a deterministic pseudorandom function of (its secret, the ciphertext, the set), so
answering an identical request twice gives identical bytes: retransmission is safe.
Consequence for the protocol: the active set must be fixed before shares are requested,
and a member of it that drops ends that decryption (no retry with another set).

Trust model
-----------
Semi-honest committee and server; at most ``t - 1`` members collude with the server. Then
the server learns the sum and nothing else (up to 2^-40 statistical distance per
coefficient, so at most ``V 2^-40`` over ``V`` decrypted coefficients, e.g. 2^-20 for a
million values; plus RLWE). A malicious member can corrupt the result (a wrong share is
caught by the offset check unless it is a multiple of the scale, i.e. crafted: then the
sum is wrong, undetected) but cannot read an input: its view is its key share and public
data. A malicious server is out of scope and dangerous: a crafted "aggregate" (say a
``c1`` of its choice, or one client's ciphertext with a false summand count) decrypts to
whatever it encodes, including the key; members can check counts, sets and repeats, not
that ``c1`` is an honest sum. Detection with ``t + 1`` shares ("two subsets must agree")
is not offered: a share is bound to its active set, so checking another subset needs a
second share of the same ciphertext, which is exactly what the rule forbids.

A protocol at a glance
----------------------
Every object that travels has ``to_bytes``, a strict ``from_bytes(params, data, ...,
party=sender)`` (DecodeError) and an exact ``encoded_size`` for cost models.

* Config (public): ``params = ThresholdCkksParameters.choose(committee_size=...,
  max_summands=..., plaintext_bits=...)`` (``to_dict``/``from_dict``),
  ``committee = Committee(ids, t)``, ``seed = derive_crs_seed(session_id)``.
* Setup: each member ``CommitteeMember(params, committee, id, seed, min_summands=...)``
  sends ``setup_message()``: a :class:`PublicKeyShare` for the server and one
  :class:`KeyShareDelivery` per other member (SECRET: seal it). The server fixes ``K``,
  builds ``collective_public_key(params, seed, shares)`` and forwards ``K`` and the
  deliveries from ``K``; each member calls ``finish_setup(K, deliveries)``.
* Input: a client sends ``encrypt(public_key, values).to_bytes()``; the server decodes it
  with ``Ciphertext.from_bytes(..., summands=1)`` and adds it (``add_``).
* Decryption: the server fixes the active set ``S`` and a request id, sends
  ``aggregate.mask_part().to_bytes()`` to the members of ``S``; each answers
  ``decryption_share(mask, S, request_id=...)``; the server calls
  ``combine(committee, aggregate, shares, S)``.
"""

from __future__ import annotations

from secagg.he.threshold_ckks.ciphertext import (
    Ciphertext,
    CiphertextMask,
    encrypt,
    encrypt_floats,
    sum_ciphertexts,
)
from secagg.he.threshold_ckks.decryption import DecryptionShare, combine
from secagg.he.threshold_ckks.keys import (
    KeyShareDelivery,
    PublicKey,
    PublicKeyShare,
    collective_public_key,
    derive_crs_seed,
)
from secagg.he.threshold_ckks.member import MAX_REQUEST_ID_BYTES, CommitteeMember, MemberState
from secagg.he.threshold_ckks.params import (
    DEFAULT_DEGREE,
    MAX_COMMITTEE,
    MAX_LENGTH,
    MAX_MEMBER_ID,
    STATISTICAL_BITS,
    TAIL_BITS,
    Committee,
    NoiseBudget,
    ThresholdCkksParameters,
    float_codec,
)

__all__ = [
    "DEFAULT_DEGREE",
    "MAX_COMMITTEE",
    "MAX_LENGTH",
    "MAX_MEMBER_ID",
    "MAX_REQUEST_ID_BYTES",
    "STATISTICAL_BITS",
    "TAIL_BITS",
    "Ciphertext",
    "CiphertextMask",
    "Committee",
    "CommitteeMember",
    "DecryptionShare",
    "KeyShareDelivery",
    "MemberState",
    "NoiseBudget",
    "PublicKey",
    "PublicKeyShare",
    "ThresholdCkksParameters",
    "collective_public_key",
    "combine",
    "derive_crs_seed",
    "encrypt",
    "encrypt_floats",
    "float_codec",
    "sum_ciphertexts",
]
