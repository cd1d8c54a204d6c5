"""What every page gets (:class:`Context`) and the helpers they share to read the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pandas as pd
import streamlit as st

from aitrader.config import Settings
from aitrader.dashboard.client import Answer
from aitrader.dashboard.config import DashboardConfig

PAGE_SIZE = 1000
MAX_ROWS = 50_000


class Api(Protocol):
    base_url: str

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Answer: ...

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Answer: ...


@dataclass(frozen=True)
class Context:
    config: DashboardConfig
    api: Api
    settings: Settings | None
    settings_error: str = ""


def missing(answer: Answer, what: str) -> bool:
    """Say on the page why ``what`` is not shown; True when it is missing."""
    if answer.ok:
        return False
    st.info(f"{what}: not available — {answer.missing}")
    return True


def all_items(api: Api, path: str, params: Mapping[str, Any] | None = None) -> Answer:
    """Every item of a paged route (``{"total", "items"}``), page by page, at most MAX_ROWS."""
    items: list[Any] = []
    query = dict(params or {})
    while True:
        answer = api.get(path, query | {"limit": PAGE_SIZE, "offset": len(items)})
        if not answer.ok:
            return answer
        page = answer.data["items"]
        items.extend(page)
        if not page or len(items) >= min(int(answer.data["total"]), MAX_ROWS):
            return Answer(data=items, status=answer.status)


def frame(rows: list[dict[str, Any]], times: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows as a table, the ``times`` columns as UTC timestamps."""
    table = pd.DataFrame(rows)
    for column in times:
        if column in table:
            table[column] = pd.to_datetime(table[column], utc=True, format="ISO8601")
    return table


def table_format(table: pd.DataFrame) -> dict[str, Any]:
    """Column settings a trader reads at a glance: times to the minute (UTC), prices and money
    with 2 decimals, quantities with 4, fractions as percent."""
    config: dict[str, Any] = {}
    for column in table.columns:
        name = str(column)
        if pd.api.types.is_datetime64_any_dtype(table[column]):
            config[name] = st.column_config.DatetimeColumn(name, format="YYYY-MM-DD HH:mm")
        elif name in ("qty", "requested_qty", "approved_qty"):
            config[name] = st.column_config.NumberColumn(name, format="%.4f")
        elif name == "return":
            config[name] = st.column_config.NumberColumn(name, format="percent")
        elif pd.api.types.is_float_dtype(table[column]):
            config[name] = st.column_config.NumberColumn(name, format="%.2f")
    return config


def show_table(table: pd.DataFrame, height: int | Literal["auto"] = "auto") -> None:
    """``table`` without its index, formatted by :func:`table_format`."""
    st.dataframe(table, hide_index=True, column_config=table_format(table), height=height)
