"""Built-in trend, momentum, volatility, volume, level and calendar features, registered on
import (statistics and microstructure live in :mod:`aitrader.features.catalog_stats`).

Price-level outputs (moving averages, bands, VWAPs) take ``relative``: when true they are
reported as ``level / close - 1`` (column suffix ``_rel``), a scale-free form for models.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from aitrader.features import calendar, indicators, levels, volatility, volume
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

_PERIOD = Param(20, lo=2, hi=100_000, help="bars in the window")
_REL = Param(False, help="report level / close - 1 instead of the price level")


def _fmt(value: float) -> str:
    return f"{value:g}".replace(".", "p").replace("-", "m")


def _rel(level: np.ndarray, close: np.ndarray, relative: bool) -> np.ndarray:
    return level / close - 1.0 if relative else level


def _suffix(p: Params) -> str:
    return "_rel" if p.flag("relative") else ""


def _trend() -> None:
    for name, fn in (("sma", indicators.sma), ("ema", indicators.ema)):
        register(
            FeatureDef(
                name,
                "trend",
                f"{name.upper()} of close",
                {"period": _PERIOD, "relative": _REL},
                column(name, "period", _suffix),
                offset("period", -1),
                _moving_average(fn),
            )
        )
    register(
        FeatureDef(
            "macd",
            "trend",
            "MACD line, signal and histogram (divided by close when relative)",
            {
                "fast": Param(12, lo=2, hi=10_000),
                "slow": Param(26, lo=2, hi=10_000),
                "signal": Param(9, lo=1, hi=10_000),
                "relative": _REL,
            },
            lambda p: [
                f"macd_{part}_{p.integer('fast')}_{p.integer('slow')}_{p.integer('signal')}{_suffix(p)}"
                for part in ("line", "signal", "hist")
            ],
            lambda p: max(p.integer("fast"), p.integer("slow")) + p.integer("signal") - 2,
            _macd,
            check=lambda p: (
                None if p.integer("fast") < p.integer("slow") else "fast must be < slow"
            ),
        )
    )
    register(
        FeatureDef(
            "adx",
            "trend",
            "ADX with +DI and −DI (Wilder)",
            {"period": Param(14, lo=2, hi=10_000)},
            lambda p: [f"{k}_{p.integer('period')}" for k in ("adx", "plus_di", "minus_di")],
            lambda p: 2 * p.integer("period") - 1,
            lambda b, p: list(indicators.adx(b.high, b.low, b.close, p.integer("period"))),
        )
    )


def _moving_average(fn: Callable[[np.ndarray, int], np.ndarray]) -> Computer:
    return lambda b, p: [_rel(fn(b.close, p.integer("period")), b.close, p.flag("relative"))]


def _macd(b: Bars, p: Params) -> list[np.ndarray]:
    parts = indicators.macd(b.close, p.integer("fast"), p.integer("slow"), p.integer("signal"))
    return [x / b.close if p.flag("relative") else x for x in parts]


def _momentum() -> None:
    for name, default, warm, summary in (
        ("rsi", 14, 0, "RSI (Wilder), 0..100"),
        ("roc", 10, 0, "rate of change, percent"),
        ("willr", 14, -1, "Williams %R, -100..0"),
    ):
        register(
            FeatureDef(
                name,
                "momentum",
                summary,
                {"period": Param(default, lo=2, hi=100_000)},
                column(name, "period"),
                offset("period", warm),
                _momentum_computer(name),
            )
        )
    register(
        FeatureDef(
            "stoch",
            "momentum",
            "stochastic %K (SMA-smoothed) and %D, 0..100",
            {
                "k": Param(14, lo=1, hi=10_000),
                "smooth_k": Param(3, lo=1, hi=1_000),
                "d": Param(3, lo=1, hi=1_000),
            },
            lambda p: [
                f"stoch_{part}_{p.integer('k')}_{p.integer('smooth_k')}_{p.integer('d')}"
                for part in ("k", "d")
            ],
            lambda p: p.integer("k") + p.integer("smooth_k") + p.integer("d") - 3,
            lambda b, p: list(
                indicators.stoch(
                    b.high, b.low, b.close, p.integer("k"), p.integer("smooth_k"), p.integer("d")
                )
            ),
        )
    )


def _momentum_computer(name: str) -> Computer:
    if name == "rsi":
        return lambda b, p: [indicators.rsi(b.close, p.integer("period"))]
    if name == "roc":
        return lambda b, p: [indicators.roc(b.close, p.integer("period"))]
    return lambda b, p: [indicators.willr(b.high, b.low, b.close, p.integer("period"))]


def _bands() -> None:
    register(
        FeatureDef(
            "bbands",
            "volatility",
            "Bollinger bands (upper, middle, lower), %B and bandwidth",
            {"period": _PERIOD, "nbdev": Param(2.0, lo=0.1, hi=10.0), "relative": _REL},
            lambda p: [
                f"bb_{part}_{p.integer('period')}_{_fmt(p.number('nbdev'))}"
                f"{_suffix(p) if part in ('upper', 'middle', 'lower') else ''}"
                for part in ("upper", "middle", "lower", "pctb", "width")
            ],
            lambda p: p.integer("period") - 1,
            _bbands,
        )
    )
    register(
        FeatureDef(
            "atr",
            "volatility",
            "average true range (Wilder); divided by close when relative",
            {"period": Param(14, lo=1, hi=10_000), "relative": _REL},
            lambda p: [f"atr_{p.integer('period')}{_suffix(p)}"],
            lambda p: p.integer("period"),
            lambda b, p: [
                indicators.atr(b.high, b.low, b.close, p.integer("period"))
                / (b.close if p.flag("relative") else 1.0)
            ],
        )
    )


def _keltner() -> None:
    register(
        FeatureDef(
            "keltner",
            "volatility",
            "Keltner channel: EMA(close) ± mult × ATR (upper, middle, lower)",
            {
                "period": _PERIOD,
                "atr_period": Param(10, lo=1, hi=10_000),
                "mult": Param(2.0, lo=0.1, hi=10.0),
                "relative": _REL,
            },
            lambda p: [
                f"kc_{part}_{p.integer('period')}_{p.integer('atr_period')}_"
                f"{_fmt(p.number('mult'))}{_suffix(p)}"
                for part in ("upper", "middle", "lower")
            ],
            lambda p: max(p.integer("period") - 1, p.integer("atr_period")),
            lambda b, p: [
                _rel(x, b.close, p.flag("relative"))
                for x in indicators.keltner(
                    b.high,
                    b.low,
                    b.close,
                    p.integer("period"),
                    p.integer("atr_period"),
                    p.number("mult"),
                )
            ],
        )
    )


def _bbands(b: Bars, p: Params) -> list[np.ndarray]:
    upper, middle, lower = indicators.bbands(b.close, p.integer("period"), p.number("nbdev"))
    pctb = indicators.percent_b(b.close, upper, lower)
    width = indicators.bandwidth(upper, middle, lower)
    rel = p.flag("relative")
    bands = [_rel(x, b.close, rel) for x in (upper, middle, lower)]
    return [*bands, pctb, width]


def _volatility() -> None:
    window = {"window": _PERIOD}
    register(
        FeatureDef(
            "realized_vol",
            "volatility",
            "realised volatility: RMS of log returns",
            window,
            lambda p: [f"rv_{p.integer('window')}"],
            lambda p: p.integer("window"),
            lambda b, p: [volatility.realized_vol(b.close, p.integer("window"))],
        )
    )
    register(
        FeatureDef(
            "parkinson",
            "volatility",
            "Parkinson high-low volatility",
            window,
            lambda p: [f"parkinson_{p.integer('window')}"],
            lambda p: p.integer("window") - 1,
            lambda b, p: [volatility.parkinson(b.high, b.low, p.integer("window"))],
        )
    )
    register(
        FeatureDef(
            "garman_klass",
            "volatility",
            "Garman-Klass OHLC volatility",
            window,
            lambda p: [f"gk_{p.integer('window')}"],
            lambda p: p.integer("window") - 1,
            lambda b, p: [
                volatility.garman_klass(b.open, b.high, b.low, b.close, p.integer("window"))
            ],
        )
    )


def _garch() -> None:
    register(
        FeatureDef(
            "garch",
            "volatility",
            "GARCH(1,1) one-step volatility forecast, refitted every refit_every bars on a "
            "trailing window (arch)",
            {
                "window": Param(1000, lo=100, hi=100_000),
                "refit_every": Param(10_000, lo=1, hi=10**7),
            },
            lambda p: [f"garch_vol_{p.integer('window')}_{p.integer('refit_every')}"],
            lambda p: p.integer("window"),
            lambda b, p: [
                volatility.garch_vol(b.close, p.integer("window"), p.integer("refit_every"))
            ],
        )
    )


def _volume() -> None:
    register(
        FeatureDef(
            "vwap",
            "volume",
            "rolling VWAP of the typical price",
            {"window": _PERIOD, "relative": _REL},
            lambda p: [f"vwap_{p.integer('window')}{_suffix(p)}"],
            lambda p: p.integer("window") - 1,
            lambda b, p: [
                _rel(
                    volume.rolling_vwap(b.high, b.low, b.close, b.volume, p.integer("window")),
                    b.close,
                    p.flag("relative"),
                )
            ],
        )
    )
    register(
        FeatureDef(
            "session_vwap",
            "volume",
            "VWAP since the start of the UTC day",
            {"relative": _REL},
            lambda p: [f"vwap_session{_suffix(p)}"],
            lambda p: 0,
            lambda b, p: [
                _rel(
                    volume.session_vwap(b.high, b.low, b.close, b.volume, b.ts),
                    b.close,
                    p.flag("relative"),
                )
            ],
        )
    )


def _volume_flow() -> None:
    register(
        FeatureDef(
            "obv",
            "volume",
            "on-balance volume over a rolling window (relative: share of window volume, -1..1)",
            {"window": _PERIOD, "relative": Param(True, help="divide by the window's volume")},
            lambda p: [f"obv_{p.integer('window')}{_suffix(p)}"],
            lambda p: p.integer("window"),
            lambda b, p: [
                volume.rolling_obv(b.close, b.volume, p.integer("window"), p.flag("relative"))
            ],
        )
    )
    register(
        FeatureDef(
            "volume_zscore",
            "volume",
            "z-score of volume over a rolling window",
            {"window": _PERIOD},
            lambda p: [f"volume_z_{p.integer('window')}"],
            lambda p: p.integer("window") - 1,
            lambda b, p: [volume.volume_zscore(b.volume, p.integer("window"))],
        )
    )
    register(
        FeatureDef(
            "anchored_vwap",
            "volume",
            "VWAP anchored at the last confirmed swing high and swing low",
            {"left": Param(5, lo=1, hi=1000), "right": Param(5, lo=1, hi=1000), "relative": _REL},
            lambda p: [
                f"avwap_{k}_{p.integer('left')}_{p.integer('right')}{_suffix(p)}"
                for k in ("high", "low")
            ],
            lambda p: p.integer("left") + p.integer("right"),
            lambda b, p: [
                _rel(x, b.close, p.flag("relative"))
                for x in volume.anchored_vwap(
                    b.high, b.low, b.close, b.volume, p.integer("left"), p.integer("right")
                )
            ],
            exact_warmup=False,
        )
    )


def _fib_label(ratio: float) -> str:
    return str(round(ratio * 1000))


def _levels() -> None:
    ratios = levels.RETRACEMENTS + levels.EXTENSIONS
    register(
        FeatureDef(
            "fibonacci",
            "levels",
            "distance of close to the Fibonacci levels of the last confirmed swing, in ATR units; "
            "swing direction (+1 up, -1 down)",
            {
                "left": Param(5, lo=1, hi=1000),
                "right": Param(5, lo=1, hi=1000),
                "atr_period": Param(14, lo=1, hi=10_000),
            },
            lambda p: (
                [f"fib_{_fib_label(r)}_{p.integer('left')}_{p.integer('right')}" for r in ratios]
                + [f"fib_dir_{p.integer('left')}_{p.integer('right')}"]
            ),
            lambda p: max(p.integer("left") + p.integer("right"), p.integer("atr_period")),
            _fibonacci,
            exact_warmup=False,
        )
    )


def _fibonacci(b: Bars, p: Params) -> list[np.ndarray]:
    lv, direction = levels.fibonacci_levels(b.high, b.low, p.integer("left"), p.integer("right"))
    atr = indicators.atr(b.high, b.low, b.close, p.integer("atr_period"))
    dist = levels.level_distance(b.close, lv, atr)
    return [dist[:, j].copy() for j in range(dist.shape[1])] + [direction]


def _calendar() -> None:
    def compute(b: Bars, p: Params) -> list[np.ndarray]:
        return [*calendar.hour_of_day(b.ts), *calendar.day_of_week(b.ts)]

    register(
        FeatureDef(
            "calendar",
            "calendar",
            "hour of day and day of week (UTC), sin/cos encoded",
            {},
            lambda p: ["hour_sin", "hour_cos", "dow_sin", "dow_cos"],
            lambda p: 0,
            compute,
        )
    )


_trend()
_momentum()
_bands()
_keltner()
_volatility()
_garch()
_volume()
_volume_flow()
_levels()
_calendar()
