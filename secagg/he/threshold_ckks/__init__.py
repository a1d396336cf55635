"""Threshold RLWE encryption for secure aggregation ("threshold CKKS"), in NumPy.

No single party can decrypt: a committee of ``n`` members generates a collective key, clients
encrypt under it, the server adds ciphertexts, and any ``t`` members' decryption shares turn
the aggregate into the sum; ``t - 1`` of them, even with the server, learn nothing about any
input. The key generation is Mouchet, Troncoso-Pastoriza, Bossuat and Hubaux, "Multiparty
Homomorphic Encryption from Ring-Learning-with-Errors" (PoPETs 2021); the t-of-n decryption
uses Shamir shares with Shoup's integer Lagrange coefficients ("Practical threshold
signatures", EUROCRYPT 2000) and noise flooding, so that a member's share does not depend on
who else answers. The ring arithmetic is :mod:`secagg.he.rlwe`.

Theory of operation
-------------------
Ring ``R_Q = Z_Q[X]/(X^N + 1)``, ``Q`` a product of 32-bit NTT primes; plaintexts are
vectors over ``Z_T``, ``T = 2^plaintext_bits``, one value per coefficient (coefficient
encoding: ``N`` values per ciphertext). ``c = committee_size`` and ``Delta = c!``
(:mod:`~secagg.he.threshold_ckks.lagrange`).

1. Key generation. A public seed expands to the common random polynomial ``a``. Member
   ``i`` draws a ternary ``s_i`` and a centered binomial ``e_i`` and publishes
   ``p_i = -a s_i + e_i`` (:class:`PublicKeyShare`). The collective key is
   ``(p, a) = (sum_(i in K) p_i, a)`` over the set ``K`` of contributors
   (:func:`collective_public_key`), and its secret ``s = sum_(i in K) s_i`` is never
   assembled anywhere.
2. t-of-n. At setup, member ``i`` also Shamir-shares ``s_i`` over ``Z_Q`` (limb by limb,
   for all ``N`` coefficients at once): ``f_i(x) = s_i + r_1 x + ... + r_(t-1) x^(t-1)``
   with uniform ``r_k``, and sends ``f_i(x_j)`` to every other member ``j``
   (:class:`KeyShareDelivery`, for the protocol layer to seal), where ``x_j`` is ``j``'s
   position ``1..n`` in the sorted committee (:meth:`Committee.position`). Member ``j``'s
   key share is ``sk_j = F(x_j)`` with ``F = sum_(i in K) f_i``, a degree ``t - 1`` sharing
   of ``s``. Dropouts during setup: the server fixes ``K`` as the members whose public key
   share and deliveries all arrived; every member that then holds the deliveries of all of
   ``K`` holds a valid share (even one outside ``K``); the others hold none and count as
   dropped. ``|K| >= t`` is required.
3. Encryption (:func:`encrypt`): ternary ``u``, binomial ``e0, e1``;
   ``c1 = a u + e1`` (the *mask*, sent in NTT form) and ``c0 = p u + e0``, sent as the
   *body* ``round(2^k gamma c0 / Q) + m 2^(k - log2 T) mod 2^k`` with ``gamma = Delta^2``
   and ``k = log2 T + ceil(log2 max_summands) + 3``: compressed from ``log2 Q`` to ``k``
   bits (a deterministic function of ``c0``, so it reveals nothing more than ``c0``), and
   the message in its top bits, where noise never reaches it. Ciphertexts add
   coefficient-wise (mod ``Q`` for masks, mod ``2^k`` for bodies); the summand count is
   tracked. Note ``c0 + c1 s = e_ct``, the encryption noise: the message is only in the
   body.
4. Decryption. Member ``j`` answers ``d_j = Delta c1 sk_j + e_j`` (:class:`DecryptionShare`)
   with ``e_j`` uniform in ``[-2^b, 2^b)`` (smudging), whatever set of members answers.
   For any ``t`` answers ``S``, the integers ``lambda'_j = Delta L_j^S(0)`` give
   ``sum_(j in S) lambda'_j d_j = gamma c1 s + sum lambda'_j e_j`` (``L_j^S(0)`` the
   Lagrange coefficient, ``sum L_j^S(0) F(x_j) = s``), and :func:`combine` computes
   ``T (that) / Q + body / 2^(k - log2 T) = m + offset (mod T)``, rounds, and refuses
   (DecodeError) any coefficient whose ``|offset|`` exceeds 3/8: an honest decryption
   never does, a corrupted share almost surely does. :func:`combine_verified` also checks
   every further share against the ``t`` it used, and names the faulty ones.

The noise bound and the smudging (all in :class:`NoiseBudget`)
---------------------------------------------------------------
A sum of ``n <= max_summands`` fresh ciphertexts decrypts with noise
``e_ct = U e_pk + E0 + E1 s``; :func:`secagg.he.rlwe.noise.noise_tail_bound` gives a ``B``
with ``P(|e_ct| >= B) <= 2^-64`` per coefficient, a Chernoff bound evaluated on the exact
distribution for ``n = max_summands`` and ``committee_size`` key holders (it only grows with
either). Let ``A`` (amplification) be the largest ``sum_(j in S) |Delta L_j^S(0)|`` and
``M`` (simulation) the largest ``|Delta / L_j^S(0)|`` over every ``S`` within ``1..c``
(:func:`~secagg.he.threshold_ckks.lagrange.lagrange_bounds`; at ``c = 5``: ``A ~ 2^12.5``,
``M ~ 2^9.5``). Smudging uses ``b = ceil(log2(c M B)) + 40``. The combined noise is at most
``E = gamma B + A 2^b``; the parameters require ``T E / Q <= 1/4`` and the body size gives
``n T / 2^k <= 1/8``, so honest offsets stay below 3/8 and sums are exact mod ``T`` (except
with probability 2^-64 per coefficient). Compared with the set-bound shares of Lattigo's
Thresholdizer this costs about ``log2 A + log2(c M)`` bits of ``Q`` (22 bits at ``c = 5``,
1000 summands: 116.5 bits needed instead of 94.3, four 32-bit limbs instead of three).
:meth:`ThresholdCkksParameters.choose` picks the fewest limbs that fit; committees much
larger than 10 need ``N = 16384`` or more (``Delta`` grows as ``c!``).

Why the message sits in the top bits. For additions only, CKKS and BFV are the same
scheme up to where the message is scaled: CKKS multiplies by ``Delta_m = 2^k`` (noise in the
low bits, approximate results), BFV by ``Q / T`` (noise below the message, exact results).
Secure aggregation wants exact sums mod ``2^bits`` (every other secagg protocol gives them),
so we scale like BFV. Real vectors go through :class:`secagg.encoding.FixedPoint`
(:func:`float_codec`): clip, scale, unbiased stochastic rounding into ``Z_T``; the decoded
mean is then off by at most ``1 / scale`` per value (about ``clip * max_summands / 2^31``
at 32 bits), and by nothing else.

Why a share need not know the active set, and why that is safe
--------------------------------------------------------------
Set-bound shares (``lambda_j^S sk_j`` before smudging, Lattigo's Thresholdizer) make a
member's answer depend on who else answers, and two answers for two sets reveal ``sk_j``
(Lattigo SECURITY.md; ePrint 2025/409): a member must refuse the second, so one member of
``S`` dropping ends the decryption. Here the share is ``Delta c1 sk_j + e_j`` for every
set, and the combiner scales shares by the integers ``lambda'_j``. Two details make this
safe:

* The noise is a pseudorandom function of (the member's secret, the ciphertext chunk), so a
  chunk has exactly one share of each member, ever: asking again returns the same bytes,
  and nothing can be averaged out.
* Why ``Delta c1 sk_j`` and not ``c1 sk_j``. Let the adversary hold ``t - 1`` key shares
  (set ``C``) and see an honest member ``j``'s share. With ``L`` the Lagrange coefficients
  over ``{0} u C``, ``F(x_j) = L_0 s + sum_(c in C) L_c F(x_c)`` and ``L_0 = 1 /
  L_j^(C u {j})(0)``, so ``d_j = mu c1 s + (known) + e_j`` with
  ``mu = Delta / L_j^(C u {j})(0)``, an integer with ``|mu| <= M``. Since
  ``c1 s = e_ct - c0``, ``d_j = -mu c0 + (known) + mu e_ct + e_j``: a simulator that knows
  ``c0`` (any ``c0`` consistent with the server's view) produces it up to ``mu e_ct``,
  which ``e_j`` hides within ``M B / 2^(b+1)`` statistical distance. Without the factor
  ``Delta`` the coefficient would be the rational ``1 / L_j(0)``: the adversary could scale
  the share by ``Delta L_j(0)`` and learn ``Delta e_ct + (Delta L_j(0)) e_j``, i.e.
  ``e_ct`` modulo a small integer per honest share -- and, combining several, ``e_ct``
  itself, hence linear equations in ``s``.

Security argument (semi-honest committee, the server sees everything it is sent). Fix a
set ``C`` of at most ``t - 1`` members colluding with the server. (1) Setup: the honest
members' ``p_i`` are RLWE samples and their deliveries to ``C`` are ``t - 1`` evaluations
of a degree ``t - 1`` polynomial with uniform coefficients, hence uniform and independent
of ``s_i``; with ``|K| >= t`` at least one contributor is honest, so ``s`` is unknown to
the adversary (Mouchet et al., Theorem 1). (2) Encryption: every upload is an RLWE
encryption under ``(p, a)`` and the body a function of it. (3) Decryption: by the bullet
above, every honest share of every decrypted chunk is simulated from ``c0``, the corrupt
key shares and fresh noise, at statistical distance at most ``c M B / 2^(b+1) <= 2^-41``
per coefficient (over all honest shares of it) plus the ``2^-64`` tail of ``B``; ``c0`` of
the aggregate is then, by RLWE, as good as uniform given the server's view, except for
what the sum itself reveals. So the view is simulated from the sum: the server learns the
sum and nothing else (up to ``2^-40`` per coefficient, ``V 2^-40`` over ``V`` decrypted
coefficients, plus RLWE), however many of the ``n`` members answer.

The rule that keeps it safe
---------------------------
A member produces at most one decryption share per key share per ciphertext (the PRF noise
makes repeats identical). :class:`CommitteeMember` refuses (MaliciousRequestError) a second
aggregate under the same request id and an aggregate of fewer than ``min_summands`` (or
more than ``max_summands``) summands, and stops after :data:`~.member.MAX_DECRYPTED_CIPHERTEXTS`
chunks (the statistical distance adds up per decrypted coefficient).

Trust model
-----------
Semi-honest committee and server; at most ``t - 1`` members collude with the server. Then
the server learns the sum and nothing else (above). A malicious member can corrupt the
result, not read an input: its view is its key share and public data. A corrupted share is
caught by the offset check, and :func:`combine_verified` names it when ``t + 1`` shares
are at hand, unless it is crafted to pass both checks (then the sum is wrong, undetected).
A malicious server is out of scope and dangerous: a crafted "aggregate" (say a ``c1`` of
its choice, or one client's ciphertext with a false summand count) decrypts to whatever it
encodes, and shares of a crafted ``c1`` leak the key shares; members can check counts,
request ids and repeats, not that ``c1`` is an honest sum.

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
* Decryption: the server sends ``aggregate.mask_part().to_bytes()`` to the members; each
  answers ``decryption_share(mask, request_id=...)``; the server calls
  ``combine_verified(committee, aggregate, shares)`` on whatever ``t`` or more arrived.
"""

from __future__ import annotations

from secagg.he.threshold_ckks.ciphertext import (
    Ciphertext,
    CiphertextMask,
    encrypt,
    encrypt_floats,
    sum_ciphertexts,
)
from secagg.he.threshold_ckks.decryption import (
    DecryptionShare,
    VerifiedDecryption,
    combine,
    combine_verified,
)
from secagg.he.threshold_ckks.keys import (
    KeyShareDelivery,
    PublicKey,
    PublicKeyShare,
    collective_public_key,
    derive_crs_seed,
)
from secagg.he.threshold_ckks.lagrange import LagrangeBounds, lagrange_bounds
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
    "LagrangeBounds",
    "MemberState",
    "NoiseBudget",
    "PublicKey",
    "PublicKeyShare",
    "ThresholdCkksParameters",
    "VerifiedDecryption",
    "collective_public_key",
    "combine",
    "combine_verified",
    "derive_crs_seed",
    "encrypt",
    "encrypt_floats",
    "float_codec",
    "lagrange_bounds",
    "sum_ciphertexts",
]
