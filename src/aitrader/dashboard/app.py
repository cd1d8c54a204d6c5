"""The dashboard's Streamlit script (``aitrader dashboard`` runs it with ``streamlit run``).

One page at a time, chosen in the sidebar or by the URL (``?page=trades``)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from aitrader.dashboard import (
    page_backtest,
    page_data,
    page_model,
    page_overview,
    page_price,
    page_trades,
)
from aitrader.dashboard.client import ApiClient, NoApi
from aitrader.dashboard.config import DashboardConfig
from aitrader.dashboard.context import Api, Context

PAGES: dict[str, Callable[[Context], None]] = {
    "overview": page_overview.render,
    "price": page_price.render,
    "trades": page_trades.render,
    "model": page_model.render,
    "backtest": page_backtest.render,
    "data": page_data.render,
}


@st.cache_resource
def _client(url: str, token: str) -> Api:
    return ApiClient(url, token) if url else NoApi()


def context() -> Context:
    """The config from the environment, the API client and the settings (or why not)."""
    from aitrader.config import load_settings
    from aitrader.errors import ConfigError

    config = DashboardConfig.from_env()
    api = _client(config.api_url, config.token)
    try:
        return Context(config, api, load_settings())
    except ConfigError as exc:
        return Context(config, api, None, str(exc))


def main() -> None:
    st.set_page_config(page_title="aitrader", page_icon="📈", layout="wide")
    if "page" not in st.session_state:  # the URL picks the first page; the sidebar the rest
        wanted = st.query_params.get("page", "overview")
        st.session_state["page"] = wanted if wanted in PAGES else "overview"
    page = st.sidebar.radio("Page", list(PAGES), key="page", format_func=str.capitalize)
    st.query_params["page"] = page
    ctx = context()
    st.sidebar.caption(f"API: {ctx.api.base_url or 'none'}")
    PAGES[page](ctx)


main()
