"""Built-in statistical and microstructure features, registered on import."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from aitrader.features import microstructure, statistics
from aitrader.features.bars import Bars
from aitrader.features.registry import (
    Computer,
    FeatureDef,
    Param,
    Params,
    column,
    offset,
    register,
)


def _window(default: int, lo: int = 2) -> dict[str, Param]:
    return {"window": Param(default, lo=lo, hi=100_000, help="bars in the window")}


def _moments(b: Bars, p: Params) -> list[np.ndarray]:
    return list(statistics.return_moments(b.close, p.integer("window")))


def _autocorr(b: Bars, p: Params) -> list[np.ndarray]:
    acf = statistics.autocorr(b.close, p.integer("window"), p.integer("max_lag"))
    return [acf[:, j].copy() for j in range(acf.shape[1])]


def _of_close(fn: Callable[[np.ndarray, int], np.ndarray]) -> Computer:
    return lambda b, p: [fn(b.close, p.integer("window"))]


def _statistics() -> None:
    register(
        FeatureDef(
            "return_moments",
            "statistics",
            "rolling mean, std, skewness and excess kurtosis of log returns",
            _window(20, lo=3),
            lambda p: [f"ret_{m}_{p.integer('window')}" for m in ("mean", "std", "skew", "kurt")],
            lambda p: p.integer("window"),
            _moments,
        )
    )
    for name, default, warm, summary, fn in (
        ("zscore", 20, -1, "z-score of close in a rolling window", statistics.zscore),
        ("pct_rank", 100, -1, "percentile rank of close", statistics.pct_rank),
        ("sharpe", 100, 0, "rolling mean/std of log returns", statistics.rolling_sharpe),
        ("drawdown", 100, -1, "close vs rolling peak close - 1", statistics.drawdown),
        (
            "trend_strength",
            20,
            -1,
            "signed R² of a line fitted to log price",
            statistics.trend_strength,
        ),
    ):
        register(
            FeatureDef(
                name,
                "statistics",
                summary,
                _window(default),
                column(name, "window"),
                offset("window", warm),
                _of_close(fn),
            )
        )


def _serial() -> None:
    register(
        FeatureDef(
            "autocorr",
            "statistics",
            "autocorrelation of log returns at lags 1..max_lag in a rolling window",
            {**_window(100, lo=3), "max_lag": Param(10, lo=1, hi=1000)},
            lambda p: [
                f"acf_{lag}_{p.integer('window')}" for lag in range(1, p.integer("max_lag") + 1)
            ],
            lambda p: p.integer("window"),
            _autocorr,
            check=lambda p: (
                None if p.integer("max_lag") < p.integer("window") else "max_lag must be < window"
            ),
        )
    )
    register(
        FeatureDef(
            "hurst",
            "statistics",
            "Hurst exponent from the scaling of lagged log-price differences",
            {**_window(100, lo=8), "max_lag": Param(16, lo=2, hi=1000)},
            lambda p: [f"hurst_{p.integer('window')}"],
            lambda p: p.integer("window") - 1,
            lambda b, p: [statistics.hurst(b.close, p.integer("window"), p.integer("max_lag"))],
            check=lambda p: (
                None
                if 2 * p.integer("max_lag") < p.integer("window")
                else "max_lag must be < window / 2"
            ),
        )
    )


def _lags(b: Bars, p: Params) -> list[np.ndarray]:
    count = p.integer("lags")
    returns, ranges = statistics.lagged(b.close, b.high, b.low, count)
    return [
        *(returns[:, k].copy() for k in range(count)),
        *(ranges[:, k].copy() for k in range(count)),
    ]


def _lag_window() -> None:
    register(
        FeatureDef(
            "lags",
            "statistics",
            "the last `lags` log returns and log high-low ranges (lag 0 = this bar): the window "
            "the sequence agents (hmm, garch, quantile) filter per row",
            {"lags": Param(48, lo=2, hi=1000, help="bars in the window")},
            lambda p: [
                *(f"lag_ret_{k}" for k in range(p.integer("lags"))),
                *(f"lag_hl_{k}" for k in range(p.integer("lags"))),
            ],
            lambda p: p.integer("lags"),
            _lags,
        )
    )


def _microstructure() -> None:
    register(
        FeatureDef(
            "amihud",
            "microstructure",
            "Amihud illiquidity: sum |log return| / sum traded value",
            _window(20),
            lambda p: [f"amihud_{p.integer('window')}"],
            lambda p: p.integer("window"),
            lambda b, p: [microstructure.amihud(b.close, b.volume, p.integer("window"))],
        )
    )
    register(
        FeatureDef(
            "roll_spread",
            "microstructure",
            "Roll effective spread from the serial covariance of returns",
            _window(20),
            lambda p: [f"roll_spread_{p.integer('window')}"],
            lambda p: p.integer("window") + 1,
            lambda b, p: [microstructure.roll_spread(b.close, p.integer("window"))],
        )
    )
    register(
        FeatureDef(
            "cs_spread",
            "microstructure",
            "Corwin-Schultz high-low spread estimate",
            _window(20, lo=1),
            lambda p: [f"cs_spread_{p.integer('window')}"],
            lambda p: p.integer("window"),
            lambda b, p: [microstructure.corwin_schultz(b.high, b.low, p.integer("window"))],
        )
    )
    register(
        FeatureDef(
            "kyle_lambda",
            "microstructure",
            "Kyle's lambda proxy: return per signed root traded value",
            _window(20),
            lambda p: [f"kyle_lambda_{p.integer('window')}"],
            lambda p: p.integer("window"),
            lambda b, p: [microstructure.kyle_lambda(b.close, b.volume, p.integer("window"))],
        )
    )


_statistics()
_serial()
_lag_window()
_microstructure()
