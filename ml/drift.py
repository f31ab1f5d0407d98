"""Population stability index between the training population and a scoring run.

PSI = sum over bins of (actual - expected) * ln(actual / expected). Bins are the training
deciles of each column plus one bin for missing values, so a feature that suddenly goes
missing drifts as visibly as one that shifts.

Features that grow with the calendar are compared as a share of the shop's age at their
own cut-off: between the training cut-offs and today every customer is months older, so
raw tenure "drifted" on every first scoring run of an unchanged shop.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DRIFT_THRESHOLD = 0.25
_FLOOR = 1e-4  # an empty bin would make the index infinite
# Calendar-growing feature -> the name of its share of the shop's age.
CALENDAR_FEATURES = {"tenure_days": "tenure_share"}


def calendar_shares(columns: pd.DataFrame, cutoffs: np.ndarray | None = None) -> pd.DataFrame:
    """Each calendar-growing column divided by its largest value at the same cut-off (the
    shop's age then); ``cutoffs`` gives each row's cut-off when rows of several are stacked."""
    shares = {}
    for name, share in CALENDAR_FEATURES.items():
        if name not in columns:
            continue
        values = columns[name].astype(float)
        age = values.max() if cutoffs is None else values.groupby(cutoffs).transform("max")
        shares[share] = (values / age).to_numpy()
    return pd.DataFrame(shares, index=columns.index)


def comparable_reference(columns: pd.DataFrame, cutoffs: np.ndarray) -> dict:
    """The reference of training rows stacked from ``cutoffs``: calendar-growing features
    as shares of the shop's age, everything else as it is."""
    steady = columns.drop(columns=[c for c in CALENDAR_FEATURES if c in columns])
    return reference(steady) | reference(calendar_shares(columns, cutoffs))


def comparable_psi(ref: dict, columns: pd.DataFrame) -> dict[str, float]:
    """PSI of one cut-off's columns against ``comparable_reference``. A reference made
    before calendar shares existed still holds raw tenure and is compared as it is."""
    return psi(ref, columns) | psi(ref, calendar_shares(columns))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    counts = np.bincount(
        np.searchsorted(edges, values[~missing], side="left"), minlength=len(edges) + 1
    )
    shares = np.append(counts, missing.sum()) / max(len(values), 1)
    return np.maximum(shares, _FLOOR)


def reference(columns: pd.DataFrame, *, bins: int = 10) -> dict[str, dict[str, list[float]]]:
    """Decile edges and shares per column, JSON-ready for the model registry."""
    result = {}
    for name, column in columns.items():
        values = column.to_numpy(dtype=float)
        present = values[~np.isnan(values)]
        quantiles = np.linspace(0, 1, bins + 1)[1:-1]
        edges = np.unique(np.quantile(present, quantiles)) if present.size else np.array([])
        result[str(name)] = {
            "edges": edges.tolist(),
            "shares": _shares(values, edges).tolist(),
        }
    return result


def psi(ref: dict[str, dict[str, list[float]]], columns: pd.DataFrame) -> dict[str, float]:
    """PSI of every column that has a reference."""
    result = {}
    for name, bins in ref.items():
        if name not in columns:
            continue
        expected = np.asarray(bins["shares"])
        actual = _shares(columns[name].to_numpy(dtype=float), np.asarray(bins["edges"]))
        result[name] = float(np.sum((actual - expected) * np.log(actual / expected)))
    return result
