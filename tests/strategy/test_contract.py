"""The Strategy contract: parameters, the registry and plug-ins, per-bar = vectorised, and the
built-in strategies through the risk-managed backtest."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from aitrader.config import Settings
from aitrader.data.samples import load_sample
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.errors import ConfigError
from aitrader.strategies.sma_cross import SmaCross
from aitrader.strategy import Param, Strategy, Target, TargetFrame
from aitrader.strategy.registry import load_strategy, parse_params, strategies, strategy_class
from aitrader.strategy.run import RunSpec, backtest_strategy, check_strategy

SYMBOL = "BTC/USD"


@pytest.fixture(scope="module")
def btc() -> dict[str, pd.DataFrame]:
    return {SYMBOL: load_sample("BTC-USD-1h").iloc[-3000:]}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


def spec(settings: Settings, **changes: object) -> RunSpec:
    return RunSpec(BrokerConfig.from_costs(settings.costs), settings.risk, **changes)  # type: ignore[arg-type]


class Peeking(Strategy):
    """Long when the NEXT close is higher (vectorized peeks one bar ahead: a leak)."""

    window = 2

    def on_bar(self, ctx):  # type: ignore[no-untyped-def]
        close = ctx.close()
        return None if len(close) < 2 else float(close[-1] > close[-2])

    def vectorized(self, data, start=0):  # type: ignore[no-untyped-def]
        close = data[SYMBOL]["close"]
        fraction = (close.shift(-1) > close).astype(float)  # the future
        fraction.iloc[0] = np.nan  # no decision on the first bar, as on_bar
        return TargetFrame(fraction.to_frame(SYMBOL))


def test_parameters_are_declared_checked_and_read() -> None:
    s = SmaCross(fast=5, slow="40")
    assert (s.fast, s.slow, s.short, s.stop_loss) == (5, 40, False, 0.03)
    assert set(SmaCross.parameters()) == {"fast", "slow", "short", "stop_loss"}
    with pytest.raises(ConfigError, match=r"fast .* must be below slow"):
        SmaCross(fast=50, slow=20)
    with pytest.raises(ConfigError, match=r"parameter fast must be int, got '2\.5'"):
        SmaCross(fast="2.5")
    with pytest.raises(ConfigError, match=r"slow must be in \[3, 400\], got 1000"):
        SmaCross(slow=1000)
    with pytest.raises(ConfigError, match=r"unknown parameter.*lookback.*known: fast, slow"):
        SmaCross(lookback=3)
    assert Param(1.0, choices=(1.0, 2.0)).coerce("2", "x") == 2.0


def test_registry_lists_builtins_and_loads_user_strategies(tmp_path: Path) -> None:
    assert {"buy-and-hold", "sma-cross", "model"} <= set(strategies())
    assert strategy_class("sma-cross") is SmaCross
    assert strategy_class("aitrader.strategies.sma_cross:SmaCross") is SmaCross
    with pytest.raises(ConfigError, match="unknown strategy 'nope': use one of buy-and-hold"):
        strategy_class("nope")
    path = tmp_path / "mine.py"
    path.write_text(
        "from aitrader.strategy import Param, Strategy\n"
        "class Mine(Strategy):\n"
        "    level = Param(2.0, low=0, high=10)\n"
        "    def on_bar(self, ctx):\n"
        "        return 1.0 if ctx.close()[-1] > self.level else 0.0\n"
    )
    mine = load_strategy(f"{path}:Mine", parse_params(["level=3.5"]))
    assert mine.name == "mine" and mine.params == {"level": 3.5}
    with pytest.raises(ConfigError, match="has no Other"):
        strategy_class(f"{path}:Other")
    broken = tmp_path / "broken.py"
    broken.write_text("def oops(:\n")
    with pytest.raises(ConfigError, match=r"broken\.py, line 1"):
        strategy_class(f"{broken}:X")
    with pytest.raises(ConfigError, match="use KEY=VALUE"):
        parse_params(["fast"])


def test_sma_cross_enters_only_on_a_crossing(settings: Settings) -> None:
    # fast above slow from the first bar both exist: no decision until the first crossing
    close = np.r_[np.linspace(100, 200, 60), np.linspace(200, 120, 40), np.linspace(120, 300, 60)]
    index = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC")
    frame = pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close},
        index=index,
    ).assign(volume=1.0)
    targets = SmaCross(fast=5, slow=20).vectorized({SYMBOL: frame}).fraction[SYMBOL]
    state = sma_crossover_targets(close, 5, 20)
    decided = targets.dropna()
    assert state[19] == 1.0 and np.isnan(targets.iloc[19])  # above, but no crossing yet
    assert decided.tolist() == [0.0, 1.0]  # down-cross, then up-cross
    first_down = int(np.flatnonzero(state == 0.0)[0])
    assert decided.index[0] == index[first_down]


def test_sma_cross_bar_by_bar_is_talib_to_the_last_bit(settings: Settings) -> None:
    # prices on a 0.1 grid make (near-)ties of fast and slow common: a running sum in another
    # order than TA-Lib's disagrees with it in the last bit there and flips some decisions
    steps = np.random.default_rng(11).integers(-1, 2, 3000).astype(np.float64)
    close = 1000.0 + np.cumsum(steps) * 0.1
    index = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC")
    frame = pd.DataFrame(
        {"open": close, "high": close + 0.1, "low": close - 0.1, "close": close, "volume": 1.0},
        index=index,
    )
    fast, slow = talib.SMA(close, timeperiod=5), talib.SMA(close, timeperiod=20)
    assert (np.abs(fast - slow) < 1e-9).sum() > 20  # the ties are there
    make = lambda: SmaCross(fast=5, slow=20)  # noqa: E731
    report = check_strategy(make, {SYMBOL: frame}, settings, spec(settings))
    assert report.difference is None and report.equal and report.decisions > 50


@pytest.mark.parametrize("name", ["sma-cross", "buy-and-hold"])
def test_builtin_on_bar_equals_vectorized(
    btc: dict[str, pd.DataFrame], settings: Settings, name: str
) -> None:
    report = check_strategy(lambda: load_strategy(name), btc, settings, spec(settings))
    assert report.difference is None and report.equal
    assert report.decisions > 0 and report.bars == 3000 - load_strategy(name).warmup
    assert math.isfinite(report.equity_per_bar)


def test_check_finds_the_first_bar_where_vectorized_differs(
    btc: dict[str, pd.DataFrame], settings: Settings
) -> None:
    report = check_strategy(Peeking, btc, settings, spec(settings))
    assert not report.equal and report.difference is not None
    diff = report.difference
    close = btc[SYMBOL]["close"].to_numpy()
    # the first bar where "next close higher" differs from "this close higher"
    up_now = np.r_[np.nan, (close[1:] > close[:-1]).astype(float)]
    up_next = np.r_[(close[1:] > close[:-1]).astype(float), 0.0]
    first = int(np.flatnonzero((up_now != up_next) & ~np.isnan(up_now))[0])
    assert (diff["bar"], diff["field"], diff["symbol"]) == (first, "fraction", SYMBOL)
    assert diff["per_bar"] == up_now[first] and diff["vectorized"] == up_next[first]


def test_per_bar_and_vectorized_backtests_are_the_same_run(
    btc: dict[str, pd.DataFrame], settings: Settings
) -> None:
    fast = backtest_strategy(SmaCross(short=True), btc, settings, spec(settings))
    slow = backtest_strategy(SmaCross(short=True), btc, settings, spec(settings, per_bar=True))
    assert fast.result.fills.equals(slow.result.fills)
    assert fast.result.equity.equals(slow.result.equity)
    assert len(fast.result.trades) > 20
    # the strategy's stop reaches every entry: the risk manager sized each to 2 % risk at 3 %
    entries = fast.decisions[fast.decisions["target"] != 0]
    assert (entries["stop"] > 0).all()


def test_stop_overrides_and_targets_with_protection(
    btc: dict[str, pd.DataFrame], settings: Settings
) -> None:
    class Protected(Strategy):
        window = 1

        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i % 50 == 25:
                return 0.0
            return Target(0.5, stop_loss=0.01, take_profit=0.02) if ctx.i % 50 == 0 else None

    run = backtest_strategy(Protected(), btc, settings, spec(settings))
    reasons = set(run.result.trades["exit_reason"])
    assert {"stop_loss", "take_profit"} <= reasons
    wide = backtest_strategy(Protected(), btc, settings, spec(settings, take_profit=0.5))
    assert "take_profit" not in set(wide.result.trades["exit_reason"])


def test_a_one_value_decision_needs_one_symbol(settings: Settings) -> None:
    frame = load_sample("BTC-USD-1h").iloc[-200:]
    data = {SYMBOL: frame, "ETH/USD": frame}

    class One(Strategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            return 1.0

    with pytest.raises(ConfigError, match="return a mapping"):
        backtest_strategy(One(), data, settings, spec(settings))


def test_library_backtest_in_a_few_lines(btc: dict[str, pd.DataFrame], settings: Settings) -> None:
    import aitrader

    run = aitrader.backtest("sma-cross", btc[SYMBOL], settings=settings, fast=5, short=True)
    same = backtest_strategy(SmaCross(fast=5, short=True), {"asset": btc[SYMBOL]}, settings,
                             spec(settings))  # fmt: skip
    assert run.result.equity.equals(same.result.equity)
    assert run.metrics["trades"] > 10 and run.metrics["final_equity"] == run.result.equity.iloc[-1]
    later = aitrader.backtest(SmaCross(), btc, settings=settings, start="2022-12-01")
    assert later.result.equity.index[0] == pd.Timestamp("2022-12-01", tz="UTC")
    with pytest.raises(TypeError, match="parameters go to the strategy"):
        aitrader.backtest(SmaCross(), btc, settings=settings, fast=3)


def test_a_strategy_without_on_bar_is_refused_when_built() -> None:
    class Empty(Strategy):
        def vectorized(self, data, start=0):  # type: ignore[no-untyped-def]
            return None

    with pytest.raises(ConfigError, match="strategy empty must implement on_bar"):
        Empty()
