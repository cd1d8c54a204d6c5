"""Kernel record arrays → the FILL_COLUMNS / TRADE_COLUMNS frames of BacktestResult."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aitrader.engine.result import FILL_COLUMNS, TRADE_COLUMNS
from aitrader.engine.types import REASONS


def order_id(symbol: str, bar: int, reason: str) -> str:
    """Deterministic client order id: symbol, decision bar and why (idempotent on replay)."""
    return f"{symbol}|{bar}|{reason}"


def fills_frame(
    rows: np.ndarray, symbols: tuple[str, ...], index: pd.DatetimeIndex
) -> pd.DataFrame:
    """Fills as FILL_COLUMNS; ``rows`` are kernel fill records."""
    bar, sym = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)
    reason, order_bar = rows[:, 7].astype(np.int64), rows[:, 8].astype(np.int64)
    names, why = np.asarray(symbols, dtype=object), np.asarray(REASONS, dtype=object)
    ids = [
        order_id(s, b, r)
        for s, b, r in zip(names[sym], order_bar.tolist(), why[reason], strict=True)
    ]
    frame = pd.DataFrame(
        {
            "time": index[bar],
            "symbol": names[sym],
            "side": np.sign(rows[:, 2]).astype(np.int64),
            "qty": np.abs(rows[:, 2]),
            "price": rows[:, 3],
            "fee": rows[:, 4],
            "slippage": rows[:, 5],
            "liquidity": np.where(rows[:, 6] == 1.0, "taker", "maker").astype(object),
            "client_order_id": np.asarray(ids, dtype=object),
            "reason": why[reason],
        }
    )
    return frame.loc[:, list(FILL_COLUMNS)]


def trades_frame(
    rows: np.ndarray, symbols: tuple[str, ...], index: pd.DatetimeIndex
) -> pd.DataFrame:
    """Round trips (flat → flat) as TRADE_COLUMNS; ``rows`` are kernel trade records."""
    names, why = np.asarray(symbols, dtype=object), np.asarray(REASONS, dtype=object)
    entry, exit_ = rows[:, 3].astype(np.int64), rows[:, 5].astype(np.int64)
    is_open = rows[:, 11] == 1.0
    exit_time = index[exit_].where(~is_open)
    frame = pd.DataFrame(
        {
            "symbol": names[rows[:, 0].astype(np.int64)],
            "side": rows[:, 1].astype(np.int64),
            "qty": rows[:, 2],
            "entry_time": index[entry],
            "entry_price": rows[:, 4],
            "exit_time": exit_time,
            "exit_price": rows[:, 6],
            "pnl": rows[:, 7],
            "return": rows[:, 7] / (rows[:, 2] * rows[:, 4]),
            "fees": rows[:, 8],
            "slippage": rows[:, 9],
            "bars_held": exit_ - entry,
            "exit_reason": why[rows[:, 10].astype(np.int64)],
            "is_open": is_open,
        }
    )
    return frame.loc[:, list(TRADE_COLUMNS)]
