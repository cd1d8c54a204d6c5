"""The Strategy contract: the one class that turns bars into decisions, everywhere.

A strategy is one class. Backtest, paper and live runs, ``evaluate``, ``scan`` and the demo all
call it the same way, through :class:`~aitrader.strategy.feed.StrategyFeed`, the risk manager
and a broker (:mod:`aitrader.engine.managed_policy`)::

    from aitrader.strategy import Param, Strategy

    class Breakout(Strategy):
        '''Long above the highest close of the last `lookback` bars, flat below the lowest.'''

        lookback = Param(20, low=5, high=200, help="bars in the channel")
        window = None  # history kept for on_bar (None: every bar)

        def on_bar(self, ctx):
            close = ctx.close()          # closes up to and including this bar
            if len(close) <= self.lookback:
                return None              # no decision yet
            channel = close[-self.lookback - 1 : -1]
            if close[-1] > channel.max():
                return 1.0               # target: 100 % of equity long
            if close[-1] < channel.min():
                return 0.0               # flat
            return None                  # keep what we have

``on_bar(ctx)`` runs at each bar's close and returns the target position per symbol as a
fraction of equity (a float for a one-symbol run, a mapping ``{symbol: float | Target}``
otherwise); ``None``/NaN or a missing symbol means "no decision" (the last target stands). A
:class:`Target` adds a protective stop and a take-profit, or a full trade plan (TP1 share, TP2,
break-even, trailing and time stops) that the engine executes. A changed target becomes an
order intent that the risk manager checks, fills at the next bar's open by default.

``vectorized(data)`` is optional: the whole target array at once, for fast backtests, sweeps and
research. The framework — not the user — proves it equal to ``on_bar``
(``aitrader strategy check``); strategies without it run bar by bar everywhere.
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from aitrader.errors import ConfigError

if TYPE_CHECKING:
    from aitrader.config import Settings
    from aitrader.engine.types import Bar
    from aitrader.features.bars import Bars
    from aitrader.models.registry import ModelBundle

ParamValue = int | float | bool | str


@dataclass(frozen=True)
class Param:
    """A tunable strategy parameter: default, range (``low``/``high``, inclusive) or ``choices``.

    Declared as a class attribute; read on an instance it is the instance's value. ``log``
    searches the range on a log scale (``aitrader optimize``); ``step`` discretises it.
    """

    default: ParamValue | None
    low: float | None = None
    high: float | None = None
    choices: tuple[ParamValue, ...] | None = None
    step: float | None = None
    log: bool = False
    help: str = ""
    type: builtins.type | None = None  # the value's type when the default does not show it (None)
    name: str = field(default="", compare=False)

    def __set_name__(self, owner: builtins.type, name: str) -> None:
        object.__setattr__(self, "name", name)

    def __get__(self, instance: Any, owner: builtins.type | None = None) -> Any:
        if instance is None:
            return self
        return instance.params[self.name]

    @property
    def kind(self) -> builtins.type:
        if self.type is not None:
            return self.type
        return type(self.default) if self.default is not None else float

    @property
    def tunable(self) -> bool:
        return self.choices is not None or (self.low is not None and self.high is not None)

    def coerce(self, value: Any, owner: str) -> ParamValue | None:
        """``value`` as this parameter's type, checked against its range (ConfigError)."""
        where = f"{owner}: parameter {self.name}"
        if value is None or (self.default is None and value in ("", "none", "None")):
            if self.default is None:
                return None
            raise ConfigError(f"{where} needs a value")
        kind = self.kind
        try:
            if kind is bool and isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                out: ParamValue = value.lower() in ("true", "1", "yes")
            elif kind is int and isinstance(value, float | str) and float(value) != int(value):
                raise ValueError(value)
            else:
                out = kind(float(value)) if kind is int else kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be {kind.__name__}, got {value!r}") from None
        if self.choices is not None and out not in self.choices:
            raise ConfigError(f"{where} must be one of {list(self.choices)}, got {value!r}")
        if isinstance(out, int | float) and not isinstance(out, bool):
            low = -math.inf if self.low is None else self.low
            high = math.inf if self.high is None else self.high
            if not low <= out <= high:
                raise ConfigError(f"{where} must be in [{self.low}, {self.high}], got {out}")
        return out


@dataclass(frozen=True, slots=True)
class Target:
    """A target position with its protection, or a full trade plan.

    ``fraction``: signed fraction of equity (NaN: no decision). ``stop_loss`` /
    ``take_profit``: distances as fractions of the entry price; ``stop_price`` /
    ``take_profit_price``: absolute levels (give a distance or a price). The take-profit is
    TP1; the plan fields manage the position after the entry (docs/STRATEGIES.md, "Trade
    plans"): ``tp1_share`` of the position closes at TP1 (NaN: all of it), the rest at ``tp2``
    / ``tp2_price``; ``break_even`` moves the stop to the entry price once TP1 has filled;
    ``trail`` is a trailing-stop distance as a fraction of the entry price (k ATRs: ``k × ATR /
    close``); ``time_stop`` closes the position after that many bars held (0: never).
    Absolute prices become distances from the decision bar's close, applied to the fill.
    ``info``: a free-form, JSON-safe explanation of the decision, recorded with it in a paper/live
    run's ledger (e.g. the model strategy's class probabilities ``{"probabilities": {"down": p,
    "flat": p, "up": p}}`` and, for a meta-agent, each agent's view and weight); it never changes
    what is traded. ``vol``: the strategy's forecast σ of the next bar's log return (a per-bar
    fraction, e.g. the GARCH agent's), which ``risk.sizing.method: vol_target`` divides its
    target by instead of the risk manager's realised estimate (NaN: that estimate).
    """

    fraction: float
    stop_loss: float = math.nan
    take_profit: float = math.nan
    stop_price: float = math.nan
    take_profit_price: float = math.nan
    tp1_share: float = math.nan
    tp2: float = math.nan
    tp2_price: float = math.nan
    break_even: bool = False
    trail: float = math.nan
    time_stop: int = 0
    vol: float = math.nan
    info: Mapping[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.plan_row() is not None:
            check_plan(self)
        if self.vol == self.vol and not self.vol > 0.0:
            raise ConfigError(f"Target: vol (σ of the next log return) must be > 0, got {self.vol}")

    def plan_row(self) -> tuple[float, ...] | None:
        """The plan fields (PLAN_FIELDS order; NaN for none, also for ``break_even`` False and
        ``time_stop`` 0), or None when this target carries no plan."""
        nan = math.nan
        row = (
            *(self.take_profit_price, self.tp1_share, self.tp2, self.tp2_price),
            *(1.0 if self.break_even else nan, self.trail, float(self.time_stop or nan)),
        )
        return None if all(v != v for v in row) else row


PLAN_FIELDS: tuple[str, ...] = (
    *("take_profit_price", "tp1_share", "tp2", "tp2_price"),
    *("break_even", "trail", "time_stop"),
)
"""A trade plan's fields beyond the stop and TP1 distance, in the rows the engine carries."""


def check_plan(target: Any) -> None:
    """Refuse an impossible plan with a clear message (ConfigError)."""
    share, trail, bars = target.tp1_share, target.trail, target.time_stop
    if share == share and not 0.0 < share <= 1.0:
        raise ConfigError(f"Target: tp1_share must be in (0, 1], got {share}")
    if trail == trail and not trail > 0.0:
        raise ConfigError(f"Target: trail must be > 0 (a fraction of the entry), got {trail}")
    if not (bars >= 0 and float(bars).is_integer()):
        raise ConfigError(f"Target: time_stop must be a whole number of bars ≥ 0, got {bars}")
    for name in ("take_profit_price", "tp2", "tp2_price"):
        value = getattr(target, name)
        if value == value and not value > 0.0:
            raise ConfigError(f"Target: {name} must be > 0, got {value}")


Decision = float | Target | Mapping[str, "float | Target | None"] | None
"""What ``on_bar`` returns: one symbol's target (float or Target), a mapping per symbol, or None."""

DecisionRow = tuple[str, float, float, Mapping[str, Any] | None]
"""A decision as a run records it: ``(symbol, target fraction, the bar's close, Target.info)``."""


@dataclass(frozen=True)
class TargetFrame:
    """What ``vectorized`` returns: per bar and symbol (columns), NaN where nothing is decided.

    ``fraction`` is required; the others (the :class:`Target` fields) default to none (NaN)."""

    fraction: pd.DataFrame
    stop_loss: pd.DataFrame | None = None
    take_profit: pd.DataFrame | None = None
    stop_price: pd.DataFrame | None = None
    take_profit_price: pd.DataFrame | None = None
    tp1_share: pd.DataFrame | None = None
    tp2: pd.DataFrame | None = None
    tp2_price: pd.DataFrame | None = None
    break_even: pd.DataFrame | None = None  # 1.0: move the stop to the entry after TP1
    trail: pd.DataFrame | None = None
    time_stop: pd.DataFrame | None = None  # bars (0 or NaN: none)
    vol: pd.DataFrame | None = None  # σ forecast for vol-target sizing (NaN: the risk's own)


@dataclass(frozen=True)
class Environment:
    """What a strategy is set up with before its first bar: the markets it trades, the run's
    settings, an attached model bundle, and per symbol the bars before the first decision bar
    (warm-up history, never traded)."""

    symbols: tuple[str, ...]
    timeframe: str
    settings: Settings
    bundle: ModelBundle | None = None
    history: Mapping[str, pd.DataFrame] = field(default_factory=dict)


class Context:
    """What ``on_bar`` sees at one bar's close. One object is reused from bar to bar.

    ``i`` is the bar's index in the run, ``time`` its open time (UTC), ``bars`` the bar per
    symbol. History methods return numpy views up to and including this bar (no copy; do not
    write into them); ``symbol`` defaults to the first one.
    """

    __slots__ = ("_buffers", "_portfolio", "_risk", "bars", "i", "symbols", "timeframe")

    def __init__(self, symbols: tuple[str, ...], timeframe: str, buffers: Mapping[str, Any]):
        self.symbols, self.timeframe, self._buffers = symbols, timeframe, buffers
        self.i = -1
        self.bars: Mapping[str, Bar] = {}
        self._portfolio: Any = None
        self._risk: Any = None

    @property
    def time(self) -> pd.Timestamp | None:
        """The bar's open time (UTC; None before the first bar or when the first symbol has
        no bar now)."""
        bar = self.bars.get(self.symbols[0]) if self.symbols else None
        return None if bar is None else bar.time

    def history(self, symbol: str | None = None) -> Bars:
        """OHLCV arrays and open times (ns) of the bars seen so far (the strategy's window)."""
        return self._buffers[symbol or self.symbols[0]].tail()

    def close(self, symbol: str | None = None) -> np.ndarray:
        """Closing prices seen so far, the current bar's last."""
        return self._buffers[symbol or self.symbols[0]].column(3)

    def position(self, symbol: str | None = None) -> float:
        """The signed quantity held (base units; 0 with no portfolio attached)."""
        if self._portfolio is None:
            return 0.0
        return float(self._portfolio.positions[symbol or self.symbols[0]].qty)

    @property
    def equity(self) -> float:
        """Account equity marked at this bar's closes (NaN with no portfolio attached)."""
        if self._portfolio is None:
            return math.nan
        return float(self._portfolio.account(self.bars).equity)

    @property
    def kill_switch(self) -> bool:
        """Whether the risk manager's kill switch is engaged (positions are being flattened)."""
        return bool(self._risk is not None and self._risk.kill_switch_engaged)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class Strategy:
    """Base class of every strategy (see the module docstring for a worked example).

    Class attributes: ``name`` (registry name; default: the class name in kebab-case),
    ``window`` (bars of history ``on_bar`` needs; None keeps every bar), ``warmup`` (bars of
    history a paper/live run loads before its first decision), ``needs_model`` (requires a model
    bundle: ``--model``), :class:`Param` declarations.
    """

    name: ClassVar[str] = ""
    window: int | None = None
    warmup: int = 0
    needs_model: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = _kebab(cls.__name__)

    def __init__(self, **params: Any) -> None:
        if type(self).on_bar is Strategy.on_bar:
            raise ConfigError(
                f"strategy {self.name} must implement on_bar(ctx): the decision at each bar's "
                "close (see docs/STRATEGIES.md)"
            )
        declared = self.parameters()
        unknown = sorted(set(params) - set(declared))
        if unknown:
            known = ", ".join(declared) or "none"
            raise ConfigError(
                f"strategy {self.name}: unknown parameter(s) {', '.join(unknown)} (known: {known})"
            )
        self.params: dict[str, Any] = {
            key: p.coerce(params.get(key, p.default), self.name) for key, p in declared.items()
        }
        self.check()

    @classmethod
    def parameters(cls) -> dict[str, Param]:
        """The declared parameters, base classes first."""
        out: dict[str, Param] = {}
        for klass in reversed(cls.__mro__):
            out.update({k: v for k, v in vars(klass).items() if isinstance(v, Param)})
        return out

    @classmethod
    def summary(cls) -> str:
        """The first paragraph of the class docstring, on one line."""
        paragraph = (cls.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(paragraph.replace("``", "").split())

    def check(self) -> None:
        """Validate parameters together (override; raise ConfigError with a clear message)."""

    def setup(self, env: Environment) -> None:
        """Called once before the first bar (override to load state from ``env.history``)."""

    def observe(self, ctx: Context) -> None:
        """A bar seen without a decision (trading paused, a resumed run catching up). Stateful
        strategies update their state here; the history buffers are updated either way."""

    def on_bar(self, ctx: Context) -> Decision:
        """The decision at this bar's close. Every strategy overrides it (a class that does not
        is refused when it is built), so this base version is never called."""
        return None

    def idle_reason(self) -> str | None:
        """Why this strategy, as set up, can never ask for a position (None: it can); runs
        that end without a trade print it (override, e.g. a model whose decision trades
        neither side)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Name and parameters, for ledgers, reports and run fingerprints."""
        return {"strategy": self.name, "params": dict(self.params)}

    @property
    def has_vectorized(self) -> bool:
        return callable(getattr(self, "vectorized", None))


def as_frame(values: Any, index: pd.Index, symbols: Sequence[str], what: str) -> pd.DataFrame:
    """A ``vectorized`` output (frame, series or array) as bars × symbols float64 frame."""
    if isinstance(values, pd.DataFrame):
        missing = [s for s in symbols if s not in values.columns]
        if missing:
            raise ConfigError(f"vectorized {what}: no column for {', '.join(missing)}")
        return values.reindex(index)[list(symbols)].astype(np.float64)
    if isinstance(values, pd.Series):
        values = values.reindex(index).to_numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.shape != (len(index), len(symbols)):
        raise ConfigError(
            f"vectorized {what}: expected shape ({len(index)}, {len(symbols)}), got {array.shape}"
        )
    return pd.DataFrame(array, index=index, columns=list(symbols))
