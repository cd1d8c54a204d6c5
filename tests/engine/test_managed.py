"""Risk-managed runs: parity with run_backtest when no limit binds, and each limit when it does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aitrader.data.samples import load_sample
from aitrader.engine.backtest import RunOptions, run_backtest
from aitrader.engine.baselines import sma_crossover_targets
from aitrader.engine.config import BrokerConfig
from aitrader.engine.managed import AtrStop, ManagedResult, run_managed_backtest
from aitrader.engine.managed_policy import DECISION_COLUMNS, protective_levels
from aitrader.engine.result import FILL_COLUMNS, TRADE_COLUMNS
from aitrader.errors import ConfigError
from aitrader.features.indicators import atr
from aitrader.risk.config import LimitsConfig, RiskConfig

PERMISSIVE = LimitsConfig(
    risk_per_trade=1.0,
    require_stop=False,
    max_position=100.0,
    max_total_exposure=100.0,
    max_correlated_exposure=100.0,
    max_daily_loss=1.0,
    max_trades_per_day=1_000_000,
    drawdown_reduce_from=0.99,
    max_drawdown=1.0,
    cooldown_minutes=0,
)
BRACKETS = RunOptions(stop_loss=0.03, take_profit=0.06)


def limits(**changes: float | int | bool) -> RiskConfig:
    return RiskConfig(limits=PERMISSIVE.model_copy(update=changes))


@pytest.fixture(scope="module")
def pair() -> dict[str, pd.DataFrame]:
    btc, eth = load_sample("BTC-USD-1h"), load_sample("ETH-USD-1h")
    index = btc.index.intersection(eth.index)[-3000:]
    return {"BTC/USD": btc.loc[index], "ETH/USD": eth.loc[index]}


@pytest.fixture(scope="module")
def btc(pair: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {"BTC/USD": pair["BTC/USD"]}


def cross(frame: pd.DataFrame, fast: int = 10, slow: int = 30) -> np.ndarray:
    return sma_crossover_targets(frame["close"].to_numpy(), fast, slow, short=True)


def entry_fills(fills: pd.DataFrame) -> pd.DataFrame:
    """Fills that opened or grew a position."""
    held: dict[str, float] = {}
    grows = []
    for symbol, side, qty in zip(fills["symbol"], fills["side"], fills["qty"], strict=True):
        before = held.get(symbol, 0.0)
        held[symbol] = before + side * qty
        grows.append(abs(held[symbol]) > abs(before) + 1e-12)
    return fills[np.array(grows, dtype=bool)]


def test_permissive_limits_reproduce_run_backtest_exactly(btc: dict[str, pd.DataFrame]) -> None:
    targets = cross(btc["BTC/USD"])
    cfg = BrokerConfig(spread_bps=4)
    fast = run_backtest(btc, targets, cfg, BRACKETS)
    managed = run_managed_backtest(btc, targets, None, cfg, limits(), BRACKETS)
    got = managed.result
    for name in ("equity", "cash", "exposure"):
        assert np.array_equal(getattr(got, name).to_numpy(), getattr(fast, name).to_numpy()), name
    assert list(got.fills.columns) == list(FILL_COLUMNS)
    assert list(got.trades.columns) == list(TRADE_COLUMNS)
    pd.testing.assert_frame_equal(got.fills, fast.fills, check_exact=True)
    pd.testing.assert_frame_equal(got.trades, fast.trades, check_exact=True)
    assert set(got.trades["exit_reason"]) >= {"signal", "stop_loss", "take_profit"}
    assert got.benchmarks.keys() == fast.benchmarks.keys() == {"buy_and_hold", "sma_crossover"}
    for name, curve in fast.benchmarks.items():
        pd.testing.assert_series_equal(got.benchmarks[name], curve, check_exact=True)
    assert (got.timeframe, got.zero_cost, got.initial_cash) == ("1h", False, 10_000.0)
    assert list(managed.decisions.columns) == list(DECISION_COLUMNS)
    assert set(managed.decisions["action"]) == {"accept"}


def test_permissive_parity_levered_pair_fill_at_close(pair: dict[str, pd.DataFrame]) -> None:
    targets = pd.DataFrame({s: cross(f, 5, 20) * 0.75 for s, f in pair.items()})
    cfg = BrokerConfig(leverage=3, max_position=1.0, max_total=2.0, fill_at="close")
    fast = run_backtest(pair, targets, cfg, RunOptions(benchmarks=False))
    got = run_managed_backtest(pair, targets, None, cfg, limits(), RunOptions(benchmarks=False))
    assert np.array_equal(got.result.equity.to_numpy(), fast.equity.to_numpy())
    pd.testing.assert_frame_equal(got.result.fills, fast.fills, check_exact=True)
    pd.testing.assert_frame_equal(got.result.trades, fast.trades, check_exact=True)
    assert got.result.benchmarks == {}


def test_funding_is_charged_on_both_paths(pair: dict[str, pd.DataFrame]) -> None:
    """Perpetual funding every 8 h (longs pay, shorts receive): the risk-managed path charges
    it exactly as the kernel does."""
    targets = pd.DataFrame({s: cross(f, 5, 20) * 0.5 for s, f in pair.items()})
    index = next(iter(pair.values())).index
    times = index[index.hour % 8 == 0]
    rates = pd.DataFrame(
        {"BTC/USD": np.full(len(times), 0.0001), "ETH/USD": np.full(len(times), -0.0002)},
        index=times,
    )
    options = RunOptions(funding=rates, benchmarks=False)
    cfg = BrokerConfig(leverage=2, max_total=2.0)
    fast = run_backtest(pair, targets, cfg, options)
    got = run_managed_backtest(pair, targets, None, cfg, limits(), options).result
    assert np.array_equal(got.equity.to_numpy(), fast.equity.to_numpy())
    assert np.array_equal(got.cash.to_numpy(), fast.cash.to_numpy())
    unfunded = run_backtest(pair, targets, cfg, RunOptions(benchmarks=False))
    assert got.equity.iloc[-1] != unfunded.equity.iloc[-1]  # funding moved the result


def test_tight_max_position_resizes_and_caps_exposure(btc: dict[str, pd.DataFrame]) -> None:
    targets = cross(btc["BTC/USD"])
    cfg = BrokerConfig(fill_at="close")
    risk = limits(max_position=0.3, require_stop=True)
    managed = run_managed_backtest(btc, targets, None, cfg, risk, BRACKETS)
    decisions, result = managed.decisions, managed.result
    resized = decisions[decisions["action"] == "resize"]
    assert len(resized) > 10
    assert resized["reason"].str.contains("max_position 0.30×equity").all()
    assert (decisions["approved_target"].abs() <= 0.3 + 1e-12).all()
    assert (resized["target"].abs() == 1.0).all()
    fill_bars = entry_fills(result.fills)["time"]
    # Sized at the fill's close; only fees and slippage of that fill push it above the cap.
    assert result.exposure.loc[fill_bars].max() <= 0.3 * 1.003
    unmanaged = run_backtest(btc, targets, cfg, BRACKETS)
    assert unmanaged.exposure.max() > 0.9 > 0.35 > result.exposure.max()


def test_max_drawdown_kill_switch_flattens_and_blocks_entries(btc: dict[str, pd.DataFrame]) -> None:
    targets = cross(btc["BTC/USD"], 5, 20)
    risk = limits(drawdown_reduce_from=0.01, max_drawdown=0.05)
    managed = run_managed_backtest(btc, targets, None, BrokerConfig(), risk, RunOptions())
    state, decisions, result = managed.risk_state, managed.decisions, managed.result
    assert state.kill_switch and state.kill_reason == "max drawdown 5.0% reached"
    kill = state.kill_time
    assert kill is not None
    flatten = decisions[decisions["intent"] == "kill_switch"]
    assert len(flatten) == 1 and flatten["time"].iloc[0] == kill
    assert flatten["action"].iloc[0] == "accept" and flatten["approved_target"].iloc[0] == 0.0
    closing = result.fills[result.fills["reason"] == "kill_switch"]
    assert len(closing) == 1 and closing["time"].iloc[0] > kill
    assert result.trades["exit_reason"].iloc[-1] == "kill_switch"
    entries = entry_fills(result.fills)
    assert entries["time"].max() <= kill
    later = decisions[(decisions["time"] > kill) & (decisions["intent"] == "signal")]
    blocked = later[later["action"] != "accept"]
    assert len(blocked) > 0
    assert blocked["reason"].str.startswith("kill switch engaged (max drawdown 5.0%").all()
    assert (later["approved_target"] == 0.0).all()
    after = result.equity[result.equity.index > closing["time"].iloc[0]]
    assert after.nunique() == 1  # flat from then on
    reduced = decisions[decisions["reason"].str.contains("drawdown .*size ×", regex=True)]
    assert len(reduced) > 0  # linear size reduction between 1 % and 5 % drawdown


def test_daily_trade_limit(btc: dict[str, pd.DataFrame]) -> None:
    targets = cross(btc["BTC/USD"], 2, 5)
    free = run_managed_backtest(btc, targets, None, BrokerConfig(), limits(), RunOptions())
    capped = run_managed_backtest(
        btc, targets, None, BrokerConfig(), limits(max_trades_per_day=2), RunOptions()
    )

    def per_day(result: ManagedResult) -> pd.Series:
        orders = entry_fills(result.result.fills)["client_order_id"].drop_duplicates()
        bars = orders.str.split("|").str[1].astype(int)
        days = result.result.equity.index[bars.to_numpy()].normalize()
        return pd.Series(1, index=days).groupby(level=0).sum()

    assert per_day(free).max() > 2
    assert per_day(capped).max() == 2
    blocked = capped.decisions[capped.decisions["reason"].str.contains("max_trades_per_day 2")]
    assert len(blocked) > 0
    assert blocked["reason"].str.match(r"2 trades today ≥ max_trades_per_day 2").all()
    flips = blocked[blocked["action"] == "resize"]  # a blocked flip still closes the position
    assert (flips["approved_target"] == 0.0).all()


def test_consecutive_losses_start_a_cool_down(btc: dict[str, pd.DataFrame]) -> None:
    targets = cross(btc["BTC/USD"], 2, 5)
    risk = limits(cooldown_after_losses=2, cooldown_minutes=600)
    managed = run_managed_backtest(btc, targets, None, BrokerConfig(), risk, RunOptions())
    cooled = managed.decisions[managed.decisions["reason"].str.startswith("cool-down after 2")]
    assert len(cooled) > 0 and (cooled["action"] != "accept").all()


def test_stop_prices_bind_risk_per_trade(btc: dict[str, pd.DataFrame]) -> None:
    frame = btc["BTC/USD"]
    targets = np.clip(cross(frame), 0, None)  # long / flat
    stops = frame["close"].to_numpy() * 0.96  # 4 % under the close: 1 % risk allows 25 %
    risk = limits(risk_per_trade=0.01, require_stop=True)
    managed = run_managed_backtest(btc, targets, stops, BrokerConfig(), risk, RunOptions())
    entries = managed.decisions[managed.decisions["target"] > 0]
    assert (entries["action"] == "resize").all()
    assert entries["reason"].eq("risk per trade 1.00%").all()
    assert np.allclose(entries["approved_target"], 0.25)
    assert np.allclose(entries["stop"], entries["price"] * 0.96)
    assert set(managed.result.fills["reason"]) <= {"signal", "stop_loss"}


def test_atr_stop_rule_and_require_stop(btc: dict[str, pd.DataFrame]) -> None:
    frame = btc["BTC/USD"]
    targets = cross(frame)
    risk = limits(require_stop=True)
    managed = run_managed_backtest(btc, targets, AtrStop(14, 2.0), BrokerConfig(), risk)
    d = managed.decisions
    h, lo, c = (frame[k].to_numpy() for k in ("high", "low", "close"))
    distance = 2.0 * atr(h, lo, c, 14)[d["bar"].to_numpy()]
    side = np.sign(d["target"].to_numpy())
    assert np.allclose(d["stop"], d["price"] - side * distance, rtol=1e-12)
    assert "stop_loss" in set(managed.result.fills["reason"])
    bare = run_managed_backtest(btc, targets, None, BrokerConfig(), risk, RunOptions())
    assert (bare.decisions["action"] == "reject").all() and len(bare.result.fills) == 0
    assert bare.decisions["reason"].eq("entry without a stop price (require_stop)").all()


def test_bad_inputs_are_config_errors(btc: dict[str, pd.DataFrame]) -> None:
    targets = cross(btc["BTC/USD"])
    with pytest.raises(ConfigError, match="not both"):
        run_managed_backtest(btc, targets, AtrStop(), options=BRACKETS)
    with pytest.raises(ConfigError, match="targets"):
        run_managed_backtest(btc, targets[:10, None])
    with pytest.raises(ConfigError, match="AtrStop"):
        AtrStop(1, 2.0)


def test_protective_levels() -> None:
    assert protective_levels(1.0, 100.0, np.nan, 0.03) == (pytest.approx(97.0), 0.03)
    assert protective_levels(-0.5, 100.0, np.nan, 0.03) == (pytest.approx(103.0), 0.03)
    assert protective_levels(1.0, 100.0, 95.0, np.nan) == (95.0, pytest.approx(0.05))
    assert protective_levels(-1.0, 100.0, 95.0, np.nan) == (None, None)  # wrong side
    assert protective_levels(0.0, 100.0, 95.0, 0.03) == (None, 0.03)
