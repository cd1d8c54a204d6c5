"""Remote candle sources behind one small page protocol: Yahoo Finance here, ccxt exchanges in
:mod:`aitrader.venues.ccxt.data`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd


@dataclass(frozen=True)
class Page:
    """One response's candles (bar-open UTC index, schema columns) and where to ask next."""

    candles: pd.DataFrame
    next_start: pd.Timestamp
    exhausted: bool
    skipped_rows: int = 0


class CandleSource(Protocol):
    """What the downloader needs from a source; implemented by ExchangeSource and YahooSource."""

    @property
    def name(self) -> str:
        """Store exchange name of this source (``binance``, ``yahoo``)."""
        ...

    def validate(self, symbols: Sequence[str], timeframe: str) -> None:
        """Raise SourceError unless every symbol and the timeframe are served."""
        ...

    def now(self) -> pd.Timestamp:
        """The source's current time (UTC); candles not closed by then are never stored."""
        ...

    def fetch_page(
        self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Page:
        """Candles with open time ≥ ``start`` (the source may return fewer, or past ``end``)."""
        ...

    def close(self) -> None:
        """Release network resources."""
        ...


def close_matches(word: str, candidates: Sequence[str], limit: int = 5) -> str:
    """``'a, b, c'`` of the candidates most like ``word`` (case-insensitive), or ``'none'``."""
    import difflib

    lowered = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=limit, cutoff=0.6)
    return ", ".join(lowered[f] for f in found) or "none"
