"""Products to recommend to each customer, from the pass over order lines the features
already make each night.

A customer's picks are the bestsellers (most distinct buyers in the last year) of the
category they buy most from, leaving out what they already own; customers with no
product history get the shop's bestsellers. Done in SQL for the targeted customers of
one campaign, this read the 21M-line table twice and took 27 s of the nightly pipeline;
here it is a few sorts of arrays the feature pass holds anyway. Pure numpy, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.grouping import distinct_counts, positions, rank_in_runs, run_starts

NO_PICK = -1
SPARE = 20  # candidates kept per category beyond k, so a few remain after removing owned


@dataclass
class Lines:
    """The order lines of qualifying orders before the cut-off, one entry per line."""

    customer: np.ndarray  # customer id
    product: np.ndarray  # product position in the catalogue, 0 .. products - 1
    seconds: np.ndarray  # when the order was placed, seconds since 1970


@dataclass
class CategoryGroups:
    """Lines per (customer, category), sorted by customer then category code."""

    customer: np.ndarray
    category: np.ndarray
    lines: np.ndarray

    @classmethod
    def of(cls, lines: Lines, category: np.ndarray) -> CategoryGroups:
        kinds = int(category.max()) + 1 if category.size else 1
        keys, counts = distinct_counts(lines.customer * kinds + category[lines.product])
        return cls(keys // kinds, keys % kinds, counts)


def _ranking(buyers: np.ndarray, category: np.ndarray, depth: int) -> np.ndarray:
    """(categories x depth) product positions with buyers, best first (ties: the lower
    position), ``NO_PICK`` beyond a category's bestsellers."""
    order = np.lexsort((np.arange(buyers.size), -buyers, category))
    order = order[buyers[order] > 0]
    rank = rank_in_runs(category[order])
    kept = rank < depth
    table = np.full((int(category.max()) + 1, depth), NO_PICK, dtype=np.int64)
    table[category[order][kept], rank[kept]] = order[kept]
    return table


def _favourites(groups: CategoryGroups) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's most-bought category (ties: the lowest code): (customers, codes)."""
    starts = np.flatnonzero(run_starts(groups.customer))
    most = np.maximum.reduceat(groups.lines, starts)
    runs = np.diff(np.append(starts, groups.customer.size))
    top = np.flatnonzero(groups.lines == np.repeat(most, runs))
    top = top[run_starts(groups.customer[top])]
    return groups.customer[top], groups.category[top]


def _rows(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``ids`` in ``sorted_ids`` and which of them are there at all."""
    at = positions(sorted_ids, ids)
    return at, sorted_ids[at] == ids


def recommend(
    lines: Lines,
    groups: CategoryGroups,
    *,
    customers: np.ndarray,
    category: np.ndarray,
    cutoff_seconds: float,
    k: int = 3,
    days: int = 365,
) -> np.ndarray:
    """(len(customers) x k) product positions for ``customers`` (sorted ids), filled
    from the left, ``NO_PICK`` where nothing is left to recommend.

    ``category`` holds each product's category code, codes in name order.
    """
    picks = np.full((customers.size, k), NO_PICK, dtype=np.int64)
    products = category.size
    recent = lines.seconds >= cutoff_seconds - days * 86400.0
    if products == 0 or customers.size == 0 or not recent.any():
        return picks
    bought, _ = distinct_counts(lines.customer[recent] * products + lines.product[recent])
    buyers = np.bincount(bought % products, minlength=products)
    depth = k + SPARE
    ranking = _ranking(buyers, category, depth)
    listed = np.full(products, depth)  # a product's rank among its category's bestsellers
    where = np.nonzero(ranking != NO_PICK)
    listed[ranking[where]] = where[1]

    # Which of their favourite category's bestsellers each customer owns: bit r for rank r.
    fans, favourite = _favourites(groups)
    owned, _ = distinct_counts(lines.customer * products + lines.product)
    owner, product = owned // products, owned % products
    fan_row = positions(fans, owner)  # every owner of a line is somebody's fan
    mine = (category[product] == favourite[fan_row]) & (listed[product] < depth)
    bits = np.where(mine, np.left_shift(1, listed[product]), 0)
    first = np.flatnonzero(run_starts(owner))
    mask_of_fan = np.zeros(fans.size, dtype=np.int64)
    mask_of_fan[fan_row[first]] = np.bitwise_or.reduceat(bits, first)

    row, known = _rows(customers, fans)
    row, fav, mask = row[known], favourite[known], mask_of_fan[known]
    filled = np.zeros(row.size, dtype=np.int64)
    for r in range(depth):
        product = ranking[fav, r]
        take = (product != NO_PICK) & ((mask >> r) & 1 == 0) & (filled < k)
        picks[row[take], filled[take]] = product[take]
        filled += take

    # No product history, or none of their category sells now: the shop's bestsellers.
    newcomers = np.ones(customers.size, dtype=bool)
    newcomers[row[ranking[fav, 0] != NO_PICK]] = False
    overall = np.lexsort((np.arange(products), -buyers))[:k]
    overall = overall[buyers[overall] > 0]
    picks[np.ix_(np.flatnonzero(newcomers), np.arange(overall.size))] = overall
    return picks
