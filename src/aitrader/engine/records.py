"""Kernel record arrays → the FILL_COLUMNS / TRADE_COLUMNS frames of BacktestResult."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aitrader.engine.types import REASONS


def order_id(symbol: str, bar: int, reason: str) -> str:
    """Deterministic client order id: symbol, decision bar and why (idempotent on replay)."""
    return f"{symbol}|{bar}|{reason}"


def _strings(values: pa.Array) -> Any:
    """Arrow strings as the column pandas infers from Python strings (``str``; ``object`` when
    there are none, as before this was vectorised)."""
    return pd.array(values, dtype="str") if len(values) else np.array([], dtype=object)


def _labels(names: Sequence[str], codes: np.ndarray) -> Any:
    """``names[codes]`` as a pandas string array, gathered in Arrow rather than per row."""
    return _strings(pa.array(list(names), pa.string()).take(codes))


def order_ids(symbols: Sequence[str], rows: np.ndarray) -> Any:
    """``order_id`` of every kernel fill record (symbol, order bar, reason), built in Arrow."""
    parts = (
        pa.array(list(symbols), pa.string()).take(rows[:, 1].astype(np.int64)),
        pc.cast(pa.array(rows[:, 8].astype(np.int64)), pa.string()),
        pa.array(list(REASONS), pa.string()).take(rows[:, 7].astype(np.int64)),
    )
    return _strings(pc.binary_join_element_wise(*parts, "|"))


def fills_frame(
    rows: np.ndarray, symbols: tuple[str, ...], index: pd.DatetimeIndex
) -> pd.DataFrame:
    """Fills as FILL_COLUMNS; ``rows`` are kernel fill records."""
    bar, reason = rows[:, 0].astype(np.int64), rows[:, 7].astype(np.int64)
    return pd.DataFrame(
        {  # FILL_COLUMNS, in order
            "time": index[bar],
            "symbol": _labels(symbols, rows[:, 1].astype(np.int64)),
            "side": np.sign(rows[:, 2]).astype(np.int64),
            "qty": np.abs(rows[:, 2]),
            "price": rows[:, 3],
            "fee": rows[:, 4],
            "slippage": rows[:, 5],
            "liquidity": _labels(("maker", "taker"), (rows[:, 6] == 1.0).astype(np.int64)),
            "client_order_id": order_ids(symbols, rows),
            "reason": _labels(REASONS, reason),
        }
    )


def trades_frame(
    rows: np.ndarray,
    symbols: Sequence[str],
    index: pd.DatetimeIndex,
    reasons: Sequence[str] = REASONS,
) -> pd.DataFrame:
    """Round trips (flat → flat) as TRADE_COLUMNS: the one trade-table builder. ``rows`` are
    trade records in the kernel's layout (the event path's come from ``TradeBook.rows``);
    column 10 indexes ``reasons``."""
    entry, exit_ = rows[:, 3].astype(np.int64), rows[:, 5].astype(np.int64)
    is_open = rows[:, 11] == 1.0
    exit_time = index[exit_].where(~is_open)
    return pd.DataFrame(
        {  # TRADE_COLUMNS, in order
            "symbol": _labels(symbols, rows[:, 0].astype(np.int64)),
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
            "exit_reason": _labels(reasons, rows[:, 10].astype(np.int64)),
            "is_open": is_open,
        }
    )
