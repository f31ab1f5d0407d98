"""How well an uplift score ranks customers, from a campaign's randomised arms (numpy only).

Customers of both arms are sorted by the uplift predicted for them when they were proposed
(best first). The Qini curve at a fraction ``f`` of them is the incremental retained
customers among the top ``f``, per treated customer in the campaign:

    Q(f) = (Y_t(f) - Y_c(f) * N_t(f) / N_c(f)) / N_t

with ``Y`` retained and ``N`` customers of each arm in the top ``f``. A random ranking
draws the straight line from 0 to Q(1); AUUC here is the area between the curve and that
line (the Qini coefficient), so 0 means "no better than random". Its 95% interval comes
from a Poisson bootstrap of the customers (each customer weighted by a Poisson(1) draw),
which keeps the sort and needs only weighted cumulative sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.charts import Series, line_chart
from retention.uplift import Uplift, retention_uplift

GRID = 50
BOOTSTRAP = 200
TOP = (0.1, 0.2, 0.3)


@dataclass
class Qini:
    fraction: np.ndarray  # 0 .. 1 on the grid
    curve: np.ndarray  # Q(f)
    random: np.ndarray  # the line from 0 to Q(1)
    auuc: float
    auuc_low: float
    auuc_high: float
    top: dict[float, Uplift]  # uplift in retention among the top 10/20/30%
    customers: int


def _curve(cum: np.ndarray, treated_total: float) -> np.ndarray:
    """Q at grid points from cumulative (Y_t, N_t, Y_c, N_c) of shape (..., 4, grid)."""
    yt, nt, yc, nc = cum[..., 0, :], cum[..., 1, :], cum[..., 2, :], cum[..., 3, :]
    scaled = np.divide(yc * nt, nc, out=np.zeros_like(yc), where=nc > 0)
    return (yt - scaled) / np.maximum(treated_total, 1)


def _area(fraction: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Area between the curve and the random line, along the last axis."""
    widths = np.diff(fraction)
    under = ((curve[..., 1:] + curve[..., :-1]) / 2 * widths).sum(axis=-1)
    return under - curve[..., -1] / 2


def qini(
    score: np.ndarray,
    retained: np.ndarray,
    treated: np.ndarray,
    *,
    grid: int = GRID,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
) -> Qini:
    """The Qini curve, AUUC with its bootstrap 95% interval, and the uplift at the top
    10/20/30%, for customers with a predicted ``score`` (ties broken by position)."""
    score = np.nan_to_num(np.asarray(score, dtype=float), nan=-np.inf)
    y = np.asarray(retained, dtype=float)
    t = np.asarray(treated, dtype=bool)
    n = len(score)
    order = np.argsort(-score, kind="stable")
    y, t = y[order], t[order]
    fraction = np.linspace(0, 1, grid + 1)
    cut = np.round(fraction * n).astype(int)
    columns = np.stack([y * t, t, y * ~t, ~t]).astype(float)  # (4, n)

    def at_cuts(weights: np.ndarray | None) -> np.ndarray:
        w = columns if weights is None else columns * weights[..., None, :]
        cum = np.concatenate([np.zeros((*w.shape[:-1], 1)), np.cumsum(w, axis=-1)], axis=-1)
        return cum[..., cut]

    point = at_cuts(None)
    curve = _curve(point, point[1, -1])
    auuc = float(_area(fraction, curve)) if n else 0.0
    rng = np.random.default_rng(seed)
    areas = []
    for start in range(0, bootstrap, 25):
        w = rng.poisson(1.0, size=(min(25, bootstrap - start), n)).astype(float)
        cum = at_cuts(w)
        areas.append(_area(fraction, _curve(cum, cum[:, 1, -1:])))
    areas = np.concatenate(areas) if areas else np.array([auuc])
    lo, hi = np.quantile(areas, [0.025, 0.975]) if n else (0.0, 0.0)
    top = {}
    for share in TOP:
        k = round(share * n)
        top[share] = retention_uplift(
            treated=int(t[:k].sum()),
            treated_retained=int((y[:k] * t[:k]).sum()),
            control=int((~t[:k]).sum()),
            control_retained=int((y[:k] * ~t[:k]).sum()),
        )
    return Qini(
        fraction=fraction,
        curve=curve,
        random=fraction * curve[-1],
        auuc=auuc,
        auuc_low=float(lo),
        auuc_high=float(hi),
        top=top,
        customers=n,
    )


def qini_chart(result: Qini) -> str:
    """The curve against random targeting, as SVG (see ``core.charts``)."""
    note = f"AUUC {result.auuc:+.4f} (95% CI {result.auuc_low:+.4f} to {result.auuc_high:+.4f})"
    return line_chart(
        [
            Series(
                "Targeting by learned uplift", list(zip(result.fraction, result.curve, strict=True))
            ),
            Series("Random targeting", list(zip(result.fraction, result.random, strict=True))),
        ],
        title="Qini curve",
        x_label="share of the campaign's customers, highest predicted uplift first",
        y_label="incremental retained per treated",
        description=note,
        y_format=lambda v: f"{v:.1%}",
    )
