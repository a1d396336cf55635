"""Which committee member partially decrypts which ciphertexts (balanced decryption).

Theory of operation. Shoup's threshold Paillier lets any t key holders decrypt any
ciphertext, so a committee of l members need not all decrypt the whole aggregate. The
aggregate's c ciphertexts are cut into ``count`` contiguous blocks whose sizes differ by
at most one (:func:`block_bounds`); with ``count = l`` block j goes to the members at
sorted positions j, j+1, ..., j+t-1 (mod l) (:func:`assigned_blocks`), so each member
decrypts about t/l of the aggregate and each block has exactly t holders. ``count = 1`` is
the classic "full" mode: every member decrypts every ciphertext.

When a block lacks t valid partials (a member dropped or sent a bad proof),
:func:`plan_fallback` picks live members that have not covered it yet, least loaded first.
Pure functions of small integers: no I/O, no randomness.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence

__all__ = ["assigned_blocks", "block_bounds", "plan_fallback"]


def block_bounds(ciphertexts: int, count: int) -> list[tuple[int, int]]:
    """``count`` contiguous [start, stop) ranges covering ``range(ciphertexts)`` in order,
    sizes differing by at most one (larger blocks last). Blocks may be empty when
    ``ciphertexts < count``. ValueError for a negative size or ``count < 1``."""
    if ciphertexts < 0 or count < 1:
        raise ValueError("need ciphertexts >= 0 and count >= 1")
    edges = [j * ciphertexts // count for j in range(count + 1)]
    return list(itertools.pairwise(edges))


def assigned_blocks(position: int, members: int, threshold: int, count: int) -> tuple[int, ...]:
    """The sorted blocks the member at sorted ``position`` (0-based) of ``members`` decrypts.

    ``count == 1`` (full mode): block 0 for everyone. ``count == members`` (balanced): the
    blocks j with ``position`` in {j, ..., j + threshold - 1} mod ``members``, i.e. each
    block has exactly ``threshold`` holders. ValueError for any other combination.
    """
    if not 0 <= position < members or not 1 <= threshold <= members:
        raise ValueError("position or threshold out of range")
    if count == 1:
        return (0,)
    if count != members:
        raise ValueError("balanced mode uses one block per member")
    return tuple(sorted((position - k) % members for k in range(threshold)))


def plan_fallback(
    missing: Mapping[int, int],
    live: Sequence[int],
    covered: Mapping[int, Collection[int]],
    sizes: Sequence[int],
) -> dict[int, list[int]] | None:
    """Members to ask for the blocks that still lack partials, or None if impossible.

    ``missing`` maps a block to how many more valid partials it needs, ``live`` lists the
    members that may still be asked (in preference order), ``covered[m]`` the blocks member
    m was already asked for, ``sizes[j]`` block j's ciphertext count. Each block goes to the
    least-loaded eligible members of this wave (ties: order in ``live``). Returns member ->
    sorted new blocks, or None when some block has too few eligible members.
    """
    load = dict.fromkeys(live, 0)
    plan: dict[int, list[int]] = {}
    for block in sorted(missing):
        need = missing[block]
        eligible = [m for m in live if block not in covered.get(m, ())]
        if len(eligible) < need:
            return None
        chosen = sorted(eligible, key=lambda m: load[m])[:need]  # stable: keeps live order
        for member in chosen:
            load[member] += sizes[block]
            plan.setdefault(member, []).append(block)
    return {member: sorted(blocks) for member, blocks in plan.items()}
