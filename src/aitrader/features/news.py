"""News sentiment features per bar, from the headline store (:mod:`aitrader.sentiment`).

A headline counts for a bar only when it was published at least ``lag_minutes`` before the bar
**opened**: ``published + lag <= bar open``. So no headline influences a bar that opened before
it was published (+ lag), and a value depends on the bar's open time alone (the same on any
history window, batch or bar by bar). Columns:

* ``news_count_{W}h`` — headlines available in the last ``window_hours``;
* ``news_mean_{W}h`` — their mean score (0 without headlines);
* ``news_decay_{H}h`` — Σ score · 2^(−age / ``halflife_hours``) over every available headline;
* ``news_surprise_{W}h`` — (window mean − mean over ``baseline_hours``) / the baseline's standard
  deviation (0 without headlines or with fewer than two in the baseline).

``store`` is the headline store's path (``aitrader news fetch`` fills it); empty: no headlines.
Note: a headline fetched long after it was published is placed at its publication time.
"""

from __future__ import annotations

import numpy as np

from aitrader.features.bars import Bars
from aitrader.features.registry import FeatureDef, Param, Params, register

_NS_MINUTE = 60 * 1_000_000_000
_NS_HOUR = 60 * _NS_MINUTE


def _decay(
    ts: np.ndarray, avail: np.ndarray, scores: np.ndarray, hi: np.ndarray, half: float
) -> np.ndarray:
    """Σ score · 2^(−age/half) of the headlines available at each bar, carried bar to bar."""
    out = np.zeros(ts.shape[0])
    state, last, j = 0.0, int(ts[0]) if ts.size else 0, 0
    for i in range(ts.shape[0]):
        now = int(ts[i])
        state *= 2.0 ** (-(now - last) / half)
        last = now
        k = int(hi[i])
        if k > j:
            state += float((scores[j:k] * 2.0 ** (-(now - avail[j:k]) / half)).sum())
            j = k
        out[i] = state
    return out


def news_values(
    ts: np.ndarray, published: np.ndarray, scores: np.ndarray, p: Params
) -> list[np.ndarray]:
    """The four columns for bars opening at ``ts`` (UTC ns) from sorted publication times."""
    ts = np.asarray(ts, dtype=np.int64)
    avail = published + p.integer("lag_minutes") * _NS_MINUTE
    sums = np.r_[0.0, np.cumsum(scores)]
    squares = np.r_[0.0, np.cumsum(scores**2)]
    hi = np.searchsorted(avail, ts, side="right")
    lo = np.searchsorted(avail, ts - p.integer("window_hours") * _NS_HOUR, side="right")
    base = np.searchsorted(avail, ts - p.integer("baseline_hours") * _NS_HOUR, side="right")
    count, n_base = hi - lo, hi - base
    mean = np.where(count > 0, (sums[hi] - sums[lo]) / np.maximum(count, 1), 0.0)
    base_mean = (sums[hi] - sums[base]) / np.maximum(n_base, 1)
    var = (squares[hi] - squares[base]) / np.maximum(n_base, 1) - base_mean**2
    std = np.sqrt(np.clip(var, 0.0, None))
    ok = (count > 0) & (n_base >= 2) & (std > 1e-9)
    surprise = np.where(ok, (mean - base_mean) / np.where(ok, std, 1.0), 0.0)
    decay = _decay(ts, avail, scores, hi, p.number("halflife_hours") * _NS_HOUR)
    return [count.astype(np.float64), mean, decay, surprise]


def _compute(bars: Bars, p: Params) -> list[np.ndarray]:
    from aitrader.sentiment.store import load_scored

    path = str(p["store"])
    published, scores = load_scored(path) if path else (np.empty(0, np.int64), np.empty(0))
    return news_values(bars.ts, published, scores, p)


def _columns(p: Params) -> list[str]:
    w, h = p.integer("window_hours"), p["halflife_hours"]
    return [f"news_count_{w}h", f"news_mean_{w}h", f"news_decay_{h:g}h", f"news_surprise_{w}h"]


def _check(p: Params) -> str | None:
    if p.integer("baseline_hours") < p.integer("window_hours"):
        return "baseline_hours must be at least window_hours"
    return None


register(
    FeatureDef(
        "news_sentiment",
        "sentiment",
        "headline count, mean, decay-weighted score and surprise (published + lag ≤ bar open)",
        {
            "store": Param("", help="headline store (aitrader news fetch); empty: none"),
            "lag_minutes": Param(
                5, lo=0, hi=10_080, help="publication lag before a headline counts"
            ),
            "window_hours": Param(24, lo=1, hi=24 * 90),
            "halflife_hours": Param(6.0, lo=0.1, hi=24 * 90),
            "baseline_hours": Param(168, lo=1, hi=24 * 365),
        },
        _columns,
        lambda p: 0,
        _compute,
        check=_check,
    )
)
