"""Real market data bundled with the package, addressable as ``sample:NAME``.

See ``samples/ATTRIBUTION.md`` for venue, source repository, commit and licence of each file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd

from aitrader.errors import UnknownName

PREFIX = "sample:"


@dataclass(frozen=True)
class Sample:
    """One bundled data set and where it came from."""

    name: str
    filename: str
    venue: str
    symbol: str
    timeframe: str
    source: str
    licence: str
    calendar: str = "crypto"


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample(
            "BTC-USD-1h",
            "kraken_BTC-USD_1h_2017-2022.csv.gz",
            "kraken",
            "BTC/USD",
            "1h",
            "avkhimen/crypto_trader @ af9d5745 : data/original_files/XBTUSD_60.csv",
            "Apache-2.0",
        ),
        Sample(
            "ETH-USD-1h",
            "kraken_ETH-USD_1h_2017-2022.csv.gz",
            "kraken",
            "ETH/USD",
            "1h",
            "avkhimen/crypto_trader @ af9d5745 : data/original_files/ETHUSD_60.csv",
            "Apache-2.0",
        ),
        Sample(
            "SPY-1d",
            "SPY_1d_1999-2020.csv.gz",
            "NYSE Arca",
            "SPY",
            "1d",
            "twopirllc/pandas-ta @ b465491f : data/SPY_D.csv",
            "MIT",
            calendar="equity",
        ),
        Sample(
            "BTC-PERP-1m",
            "ftx_BTC-PERP_1m_2022-01.csv.gz",
            "ftx",
            "BTC-PERP",
            "1m",
            "nautechsystems/nautilus_trader @ a95c8042 : "
            "tests/test_data/btc-perp-20211231-20220201_1m.csv",
            "LGPL-3.0",
        ),
    )
}


def sample_namespace(sample: Sample) -> str:
    """The store exchange name for a bundled sample (``sample-kraken``): never a user's series."""
    return "sample-" + sample.venue.lower().replace(" ", "")


def get_sample(name: str) -> Sample:
    """Look up a bundled data set by name, with or without the ``sample:`` prefix."""
    key = name.removeprefix(PREFIX)
    try:
        return SAMPLES[key]
    except KeyError:
        raise UnknownName(
            f"unknown sample {name!r}; bundled samples: " + ", ".join(PREFIX + k for k in SAMPLES)
        ) from None


@lru_cache(maxsize=8)
def _load(name: str) -> pd.DataFrame:
    from aitrader.data.schema import to_candles

    sample = SAMPLES[name]
    with resources.as_file(resources.files("aitrader.data") / "samples" / sample.filename) as path:
        raw = pd.read_csv(path, dtype={"timestamp": "string"}, engine="pyarrow")
    return to_candles(raw, f"{PREFIX}{name}", timestamp_unit="iso")


def load_sample(name: str) -> pd.DataFrame:
    """Candles of a bundled data set (a fresh copy; callers may modify it)."""
    return _load(get_sample(name).name).copy()
