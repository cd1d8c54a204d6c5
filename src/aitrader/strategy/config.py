"""Decision settings: signal thresholds and bands, trading modes, regimes and trade plans."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from aitrader.frozen import Frozen

REGIMES: tuple[str, ...] = tuple(
    f"{trend}_{vol}" for trend in ("trend", "range") for vol in ("low", "normal", "high")
)
"""Regime labels: trend/range × low/normal/high volatility."""


class Band(Frozen):
    """A conviction band: size ``multiple`` × base once the win probability is ≥ ``min_prob``."""

    min_prob: float = Field(gt=0, le=1)
    multiple: float = Field(gt=0, le=100)


DEFAULT_BANDS: tuple[Band, ...] = (
    Band(min_prob=0.55, multiple=1.0),
    Band(min_prob=0.65, multiple=2.0),
    Band(min_prob=0.80, multiple=3.0),
)


class SignalOverride(Frozen):
    """Replaces the base thresholds / minimum EV for one symbol, symbol:timeframe or regime."""

    long_threshold: float | None = Field(None, gt=0, le=1)
    short_threshold: float | None = Field(None, gt=0, le=1)
    min_ev: float | None = Field(None, ge=-1, le=1)
    allow_long: bool | None = None
    allow_short: bool | None = None


class SignalConfig(Frozen):
    """Long when P(up) ≥ ``long_threshold``, short when P(down) ≥ ``short_threshold``; size from
    the bands; EV gate; ``overrides`` keyed ``SYMBOL`` or ``SYMBOL:TIMEFRAME`` (see signals.py).
    The win probability of a side is its class probability among the moves (P(up) / (P(up) +
    P(down))); ``min_trades``: the fewest calibration trades a decision tuned on a model's
    calibration slice rests on (``aitrader.strategy.edge``)."""

    long_threshold: float = Field(0.55, gt=0, le=1)
    short_threshold: float = Field(0.55, gt=0, le=1)
    allow_long: bool = True
    allow_short: bool = True
    bands: tuple[Band, ...] = DEFAULT_BANDS
    min_ev: float = Field(0.0, ge=-1, le=1, description="EV margin over costs, fraction of price")
    entry_liquidity: Literal["taker", "maker"] = "taker"
    exit_liquidity: Literal["taker", "maker"] = "taker"
    overrides: dict[str, SignalOverride] = Field(default_factory=dict)
    regime_overrides: dict[str, SignalOverride] = Field(default_factory=dict)
    min_trades: int = Field(
        30, ge=1, description="fewest calibration trades a tuned decision must rest on"
    )

    @field_validator("bands")
    @classmethod
    def _bands_increase(cls, bands: tuple[Band, ...]) -> tuple[Band, ...]:
        if not bands:
            raise ValueError("at least one conviction band is needed")
        probs = [b.min_prob for b in bands]
        mults = [b.multiple for b in bands]
        if probs != sorted(set(probs)) or mults != sorted(mults):
            raise ValueError(
                "bands must have strictly increasing min_prob, non-decreasing multiple"
            )
        return bands

    @field_validator("regime_overrides")
    @classmethod
    def _known_regimes(cls, value: dict[str, SignalOverride]) -> dict[str, SignalOverride]:
        unknown = sorted(set(value) - set(REGIMES))
        if unknown:
            raise ValueError(f"unknown regimes {unknown}; allowed: {list(REGIMES)}")
        return value

    def with_outer_band(self, min_prob: float, multiple: float | None = None) -> SignalConfig:
        """A copy whose outermost band starts at ``min_prob`` (e.g. from a CLI option)."""
        outer = self.bands[-1]
        band = Band(min_prob=min_prob, multiple=outer.multiple if multiple is None else multiple)
        return self.model_validate({**self.model_dump(), "bands": (*self.bands[:-1], band)})


VOL_TIERS: tuple[str, ...] = ("low", "normal", "high")
"""Volatility tiers of a regime label, calmest first."""


class RegimeConfig(Frozen):
    """Regime labelling: trend vs range from |signed R²|; the volatility tier from the
    percentile of realised vol (``source: rules``) or from the HMM regime agent's
    forward-filtered state probabilities (``source: hmm``, :mod:`aitrader.strategy.regimes`).
    ``mode_by_tier`` maps the last bar's volatility tier to the trading mode ``select_mode``
    picks (tiers not listed: the scores decide)."""

    trend_window: int = Field(50, ge=5)
    trend_r2: float = Field(0.7, gt=0, lt=1, description="|R²| from which a window trends")
    vol_window: int = Field(20, ge=2)
    vol_rank_window: int = Field(500, ge=20)
    low_vol_pct: float = Field(0.33, gt=0, lt=1)
    high_vol_pct: float = Field(0.67, gt=0, lt=1)
    source: Literal["rules", "hmm"] = Field(
        "rules", description="volatility tier: percentile rules, or the HMM regime agent"
    )
    hmm_states: int = Field(3, ge=2, le=6, description="states of an HMM fitted here")
    hmm_window: int = Field(48, ge=2, le=1000, description="bars an HMM fitted here filters")
    hmm_train_bars: int = Field(
        2000, ge=100, description="last bars before the first decision an HMM is fitted on"
    )
    mode_by_tier: dict[Literal["low", "normal", "high"], str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tiers(self) -> RegimeConfig:
        if self.low_vol_pct >= self.high_vol_pct:
            raise ValueError("low_vol_pct must be below high_vol_pct")
        return self


class ScoreWeights(Frozen):
    """Weights of the normalised trend, volatility and liquidity scores (may be negative)."""

    trend: float = 1.0
    volatility: float = 1.0
    liquidity: float = 1.0


class ModeConfig(Frozen):
    """A trading mode: its timeframes, look-back, score weights, signal and risk settings."""

    timeframes: tuple[str, ...] = Field(min_length=1)
    lookback: int = Field(ge=10, description="bars scored, at the mode's timeframe")
    weights: ScoreWeights
    min_bar_notional: float = Field(gt=0, description="median quote volume per bar for liquidity 1")
    signal: SignalOverride = SignalOverride()
    bands: tuple[Band, ...] | None = None
    risk_pct: float | None = Field(None, gt=0, le=0.2)
    max_leverage: float | None = Field(None, ge=1, le=125)
    max_trades_per_day: int | None = Field(None, ge=1)
    max_hold_bars: int = Field(0, ge=0, description="time stop in bars (0: none)")


def _default_modes() -> dict[str, ModeConfig]:
    return {
        "scalping": ModeConfig(
            timeframes=("1m",),
            lookback=240,
            weights=ScoreWeights(trend=-1.0, volatility=1.0, liquidity=1.0),
            min_bar_notional=250_000.0,
            risk_pct=0.0025,
            max_trades_per_day=40,
            max_hold_bars=30,
        ),
        "intraday": ModeConfig(
            timeframes=("5m", "15m"),
            lookback=200,
            weights=ScoreWeights(trend=0.5, volatility=0.5, liquidity=0.5),
            min_bar_notional=1_000_000.0,
            risk_pct=0.005,
            max_trades_per_day=12,
            max_hold_bars=48,
        ),
        "swing": ModeConfig(
            timeframes=("1h", "4h", "1d"),
            lookback=200,
            weights=ScoreWeights(trend=1.5, volatility=0.25, liquidity=0.25),
            min_bar_notional=5_000_000.0,
            risk_pct=0.01,
            max_trades_per_day=4,
            max_hold_bars=0,
        ),
    }


class ModesConfig(Frozen):
    """The declared modes, how their trend/volatility/liquidity scores are normalised (see
    modes.py), the fallback mode and the regime labelling."""

    modes: dict[str, ModeConfig] = Field(default_factory=_default_modes)
    trend_t_full: float = Field(3.0, gt=0, description="t-statistic of a fully trending window")
    vol_cost_multiple: float = Field(2.0, gt=0, description="σ per bar / round trip for vol 1")
    default: str | None = Field(None, description="mode used when none can be scored")
    regime: RegimeConfig = RegimeConfig()

    @model_validator(mode="after")
    def _default_known(self) -> ModesConfig:
        if not self.modes:
            raise ValueError("declare at least one mode")
        if self.default is not None and self.default not in self.modes:
            raise ValueError(f"default mode {self.default!r} is not among {sorted(self.modes)}")
        for tier, mode in self.regime.mode_by_tier.items():
            if mode not in self.modes:
                raise ValueError(
                    f"regime.mode_by_tier.{tier}: mode {mode!r} is not among {sorted(self.modes)}"
                )
        return self


class PlanConfig(Frozen):
    """How a trade plan places its stop and targets, and how it exits (the engine executes it:
    TP1 share, break-even after TP1, ATR trailing stop, time stop). The stop of the model
    strategy too: ``stop_atr`` × ATR, or with ``stop_method: garch`` ``stop_garch`` × the
    bundle's GARCH agent's predicted next high-low range (``swing`` is for trade plans)."""

    stop_method: Literal["atr", "swing", "garch"] = "atr"
    atr_period: int = Field(14, ge=2)
    stop_atr: float = Field(1.5, gt=0, description="ATR multiple of the stop distance")
    stop_garch: float = Field(
        1.5, gt=0, description="stop_method garch: multiple of the GARCH agent's next-bar range"
    )
    swing_left: int = Field(5, ge=1)
    swing_right: int = Field(5, ge=1)
    swing_buffer_atr: float = Field(0.1, ge=0, description="stop this many ATRs beyond the swing")
    target_method: Literal["r_multiple", "fibonacci"] = "r_multiple"
    tp1_r: float = Field(1.0, gt=0, description="TP1 distance in multiples of the risk")
    tp2_r: float = Field(2.0, gt=0, description="TP2 distance in multiples of the risk")
    fib_extensions: tuple[float, ...] = (1.272, 1.618)
    tp1_fraction: float = Field(0.5, gt=0, le=1, description="share of the position closed at TP1")
    trail_atr: float = Field(2.0, gt=0, description="ATR multiple of the trailing stop")
    max_hold_bars: int = Field(0, ge=0, description="time stop after entry (0: none)")
    min_tp1_net: float = Field(0.002, ge=0, description="TP1 return after costs, at least")

    @model_validator(mode="after")
    def _targets_ordered(self) -> PlanConfig:
        if self.tp2_r < self.tp1_r:
            raise ValueError("tp2_r must be at least tp1_r")
        if any(e <= 1 for e in self.fib_extensions) or not self.fib_extensions:
            raise ValueError("fib_extensions must be ratios above 1")
        return self


class RunConfig(Frozen):
    """What a run trades — the ``run:`` section shared by ``backtest``, ``paper`` and ``live``
    (with ``costs:`` and ``risk:``), so one file rebuilds the same run everywhere. Command-line
    options override it; ``params`` are merged key by key with ``--param``."""

    strategy: str | None = Field(
        None, description="name, package.module:Class or file.py:Class (None: sma-cross / model)"
    )
    params: dict[str, int | float | bool | str | None] = Field(default_factory=dict)
    model: str | None = Field(None, description="model bundle directory (aitrader train)")
    data: list[str] = Field(
        [], description="backtest / paper --replay data sets: sample:NAME or EX:SYMBOL:TF"
    )
    start: str | None = Field(None, description="first traded bar (date, UTC)")
    end: str | None = Field(None, description="last bar (date, UTC)")
    stop_loss: float | None = Field(None, gt=0, lt=1, description="stop for every entry")
    take_profit: float | None = Field(None, gt=0, lt=1, description="take-profit, every entry")
    exchange: str | None = Field(None, description="paper/live on an exchange: ccxt id")
    symbols: list[str] = Field([], description="paper/live on an exchange: markets")
    timeframe: str | None = Field(None, description="paper/live on an exchange: bar timeframe")
    capital: float | None = Field(None, gt=0, description="live: quote currency traded")
