"""What every page gets (:class:`Context`) and the helpers they share to read the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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
