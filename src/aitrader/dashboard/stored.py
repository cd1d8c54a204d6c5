"""Read-only access to the data store and bundled samples (cached across reruns)."""

from __future__ import annotations

import streamlit as st

from aitrader.config import Settings
from aitrader.data.datasets import Dataset
from aitrader.data.samples import PREFIX, SAMPLES
from aitrader.data.store import Store


def dataset_names(settings: Settings) -> list[str]:
    """Every series in the store (EXCHANGE:SYMBOL:TF), then the bundled samples."""
    stored = [str(m.key) for m in Store(settings.data.dir).list()]
    return stored + [PREFIX + name for name in SAMPLES]


def symbol_of(name: str) -> str:
    """The market symbol of a data set name (sample:NAME or EXCHANGE:SYMBOL:TF)."""
    if name.startswith(PREFIX):
        return SAMPLES[name.removeprefix(PREFIX)].symbol
    parts = name.split(":")
    return parts[1] if len(parts) == 3 else name


@st.cache_data(show_spinner="loading candles", max_entries=8)
def load(name: str, data_dir: str) -> Dataset:
    """The data set ``name``: candles, symbol, timeframe, calendar."""
    from aitrader.data.datasets import load_dataset

    return load_dataset(name, Store(data_dir))
