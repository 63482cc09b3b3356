"""The compiled parts of ``engine.capacity`` (numba, compiled on first use and cached on disk):
a sorted multiset of (key, signed count) kept with its prefix sums, changed in place, and
the two queries the ledger answers on it.

``keys[:n]`` are sorted and distinct, with non-zero counts; ``cum[i]`` is the sum of the
counts of ``keys[:i]`` (``cum[0] = 0``). A change at an existing key adds to its count (and
drops the key when the count becomes 0); a new key is inserted. Either moves the tail of
the arrays by one place: a memory move, not a rebuild.
"""

from __future__ import annotations

from typing import Any

import numba as nb

_LINEAR = 8
"""Steps walked one by one before a binary search (query times rise, so the next key is
usually a few places on)."""


@nb.njit(cache=True)
def _search(keys: Any, lo: int, n: int, x: int, right: bool) -> int:
    """The first index ``i >= lo`` of ``keys[:n]`` with ``keys[i] > x`` (``right``) or
    ``keys[i] >= x`` (not ``right``): the place ``x`` would go."""
    i = lo
    for _ in range(_LINEAR):
        if i >= n or (keys[i] > x if right else keys[i] >= x):
            return i
        i += 1
    hi = n
    while i < hi:
        mid = (i + hi) >> 1
        if keys[mid] > x if right else keys[mid] >= x:
            hi = mid
        else:
            i = mid + 1
    return i


@nb.njit(cache=True)
def change(keys: Any, cum: Any, n: int, x: int, c: int) -> int:
    """Add ``c`` at key ``x``; returns the new number of keys. ``keys`` and ``cum`` must
    have room for one more key (the caller grows them)."""
    i = _search(keys, 0, n, x, False) if n <= _LINEAR else _bsearch_left(keys, n, x)
    if i < n and keys[i] == x:
        if cum[i + 1] - cum[i] + c == 0:  # the count cancels: drop the key
            for m in range(i, n - 1):
                keys[m] = keys[m + 1]
            for m in range(i + 1, n):  # the key's count (-c) leaves every later sum
                cum[m] = cum[m + 1] + c
            return n - 1
        for m in range(i + 1, n + 1):
            cum[m] += c
        return n
    for m in range(n, i, -1):
        keys[m] = keys[m - 1]
    for m in range(n + 1, i + 1, -1):
        cum[m] = cum[m - 1] + c
    keys[i] = x
    cum[i + 1] = cum[i] + c
    return n + 1


@nb.njit(cache=True)
def _bsearch_left(keys: Any, n: int, x: int) -> int:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] >= x:
            hi = mid
        else:
            lo = mid + 1
    return lo


@nb.njit(cache=True)
def taken(
    sk: Any,
    sc: Any,
    sn: int,
    ek: Any,
    ec: Any,
    en: int,
    lo: Any,
    half: int,
    times: Any,
    slot: int,
    out: Any,
) -> None:
    """``out[i, k]``: accelerators taken in slot ``[times[k], times[k] + slot)`` of the pool
    whose keys start at ``lo[i]`` (key = ``lo[i] + half + time``), from the starts
    (``sk``, ``sc``, ``sn``) and ends (``ek``, ``ec``, ``en``): the counts of allocations
    starting before the slot's end less those ended by its start, each less what the
    earlier pools' keys add up to (``times`` rising)."""
    T = times.shape[0]
    for i in range(lo.shape[0]):
        base = lo[i]
        ia = _bsearch_left(sk, sn, base)
        a0 = sc[ia]
        idd = _bsearch_left(ek, en, base)  # no key lies on a pool's base
        d0 = ec[idd]
        for k in range(T):
            t = base + half + times[k]
            ia = _search(sk, ia, sn, t + slot, False)
            idd = _search(ek, idd, en, t, True)
            out[i, k] = (sc[ia] - a0) - (ec[idd] - d0)


@nb.njit(cache=True)
def peak(sk: Any, sc: Any, sn: int, ek: Any, ec: Any, en: int, lo: int, a: int, b: int) -> int:
    """Most accelerators held at any moment of ``[a, b)`` (keys, not times) of the pool
    whose keys start at ``lo``: the level only rises where an allocation starts, so it is
    read at ``a`` and at each start inside ``(a, b)``."""
    ia = _bsearch_left(sk, sn, lo)
    a0 = sc[ia]
    idd = _bsearch_left(ek, en, lo)
    d0 = ec[idd]
    # At a: starts <= a less ends <= a.
    ia = _search(sk, ia, sn, a, True)
    idd = _search(ek, idd, en, a, True)
    best = (sc[ia] - a0) - (ec[idd] - d0)
    while ia < sn and sk[ia] < b:
        x = sk[ia]
        ia = _search(sk, ia, sn, x, True)
        idd = _search(ek, idd, en, x, True)
        level = (sc[ia] - a0) - (ec[idd] - d0)
        if level > best:
            best = level
    return best
