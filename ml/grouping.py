"""Group-by on sorted numpy arrays, for tens of millions of keys.

numpy 2.4's ``np.unique`` hashes: 5.1 s for counts and inverse of 21M customer ids here,
18 s for the distinct values of 20M int64 keys, against 0.3-0.4 s for a sort and a mask
of where runs of equal values start.
"""

from __future__ import annotations

import numpy as np


def run_starts(values: np.ndarray) -> np.ndarray:
    """True where a sorted array's value differs from the one before."""
    starts = np.ones(values.size, dtype=bool)
    starts[1:] = values[1:] != values[:-1]
    return starts


def run_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and how often each occurs."""
    starts = np.flatnonzero(run_starts(values))
    return values[starts], np.diff(np.append(starts, values.size))


def distinct_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct values of any array and how often each occurs."""
    return run_counts(np.sort(values))


def rank_in_runs(values: np.ndarray) -> np.ndarray:
    """Each element's position within its run of equal values (0 for a run's first)."""
    starts = run_starts(values)
    first = np.flatnonzero(starts)
    return np.arange(values.size) - first[np.cumsum(starts) - 1]


def positions(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where each of ``values`` would sit in the sorted distinct ``sorted_ids``, clipped to
    its bounds: callers check ``sorted_ids[p] == value`` where a value may be missing.

    Ids of a database table are mostly dense, so a lookup table over their range answers
    with one gather; a binary search took 2 s for 21M order lines among 200 products.
    Sparse or huge ids fall back to the search.
    """
    if sorted_ids.size == 0:
        return np.zeros(values.size, dtype=np.int64)
    low, high = int(sorted_ids[0]), int(sorted_ids[-1])
    if low < 0 or high >= max(4 * (sorted_ids.size + values.size), 1 << 20):
        return np.searchsorted(sorted_ids, values).clip(max=sorted_ids.size - 1)
    table = np.zeros(high + 1, dtype=np.int32 if sorted_ids.size < 2**31 else np.int64)
    table[sorted_ids] = np.arange(sorted_ids.size)
    # A value that is no id gets slot 0; the caller's check finds it out.
    return table[values.clip(0, high)]


def customer_groups(customer_ids: np.ndarray, folds: int, *, salt: int = 0) -> np.ndarray:
    """A stable fold number in ``range(folds)`` per customer id, from a 64-bit mix
    (splitmix64) so groups follow neither the order ids were assigned in nor each other:
    another ``salt`` gives a split independent of the first, which nested splits need
    (the ensemble's out-of-fold split inside a validation fold that already left one
    group out)."""
    with np.errstate(over="ignore"):  # the mix wraps around 2**64 by design
        z = customer_ids.astype(np.uint64) + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (z % np.uint64(folds)).astype(np.int64)
