"""Data: what the store holds (coverage) and how clean it is (the ``aitrader data qc`` checks)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from aitrader.config import Settings
from aitrader.dashboard.charts import rows_figure
from aitrader.dashboard.context import Context
from aitrader.dashboard.stored import dataset_names, load


def store_table(settings: Settings) -> pd.DataFrame:
    """One row per stored series: range, rows, calendar, source, last write."""
    from aitrader.data.store import Store

    metas = Store(settings.data.dir).list()
    return pd.DataFrame(
        [
            {
                "dataset": str(m.key),
                "first": m.first,
                "last": m.last,
                "rows": m.rows,
                "calendar": m.calendar,
                "source": m.source,
                "last write": m.last_sync,
            }
            for m in metas
        ],
        columns=["dataset", "first", "last", "rows", "calendar", "source", "last write"],
    )


def monthly_rows(candles: pd.DataFrame, timeframe: str, calendar: str) -> pd.Series:
    """Bars stored per calendar month; on the crypto calendar (every bar of every day) as a
    share of the bars the month has, the first and last month counted from the first and last
    bar."""
    from aitrader.data.timeframes import timeframe_seconds

    index = candles.index.tz_convert("UTC").tz_localize(None)
    counts = pd.Series(1, index=index).resample("MS").sum()
    if calendar != "crypto":
        return counts
    step = pd.Timedelta(seconds=timeframe_seconds(timeframe))
    starts = counts.index.to_series().clip(lower=index[0])
    ends = (counts.index + pd.offsets.MonthBegin(1)).to_series(index=counts.index)
    ends = ends.clip(upper=index[-1] + step)
    return counts / ((ends - starts) / step)


@st.cache_data(show_spinner="checking the data", max_entries=8)
def _qc(name: str, _settings: Settings) -> dict[str, Any]:
    from aitrader.data.datasets import load_dataset
    from aitrader.data.quality import run_qc
    from aitrader.data.store import Store

    dataset = load_dataset(name, Store(_settings.data.dir), raw=True)
    report = run_qc(dataset.candles, dataset.timeframe, _settings.qc, name, dataset.calendar)
    return report.as_dict()


def render(ctx: Context) -> None:
    st.title("Data: coverage and quality")
    if ctx.settings is None:
        st.error(f"The configuration cannot be read: {ctx.settings_error}")
        return
    settings = ctx.settings
    stored = store_table(settings)
    st.subheader(f"Store {settings.data.dir}")
    if stored.empty:
        st.write("The store is empty (bundled samples are listed below): `aitrader data download`.")
    else:
        st.dataframe(stored, hide_index=True)
    names = dataset_names(settings)
    name = st.selectbox("Check", names, index=len(stored))
    try:
        report = _qc(name, settings)
        dataset = load(name, str(settings.data.dir))
    except Exception as exc:  # unreadable data: say which and why
        st.error(f"{name}: cannot be checked ({exc})")
        return
    _verdict(report)
    monthly = monthly_rows(dataset.candles, dataset.timeframe, dataset.calendar)
    title = f"{name}: bars stored per month ({dataset.timeframe}, {dataset.calendar} calendar)"
    crypto = dataset.calendar == "crypto"
    st.plotly_chart(rows_figure(monthly, title, share=crypto), width="stretch")
    left, right = st.columns(2)
    left.subheader("Checks")
    right.subheader("Largest gaps")
    checks = pd.DataFrame(report["checks"])[["check", "count", "status", "policy"]]
    left.dataframe(checks, hide_index=True)
    gaps = pd.DataFrame(report["gaps"]["list"])
    if gaps.empty:
        right.write("No gaps.")
    else:
        largest = gaps.sort_values("missing", ascending=False).head(20)
        right.dataframe(largest, hide_index=True)


def _verdict(report: dict[str, Any]) -> None:
    gaps = report["gaps"]
    warned = [c["check"] for c in report["checks"] if c["status"] != "ok"]
    text = (
        f"**{report['rows']:,} bars** {report['first']} → {report['last']}; "
        f"{gaps['count']} gaps, {gaps['missing_bars']:,} missing bars; "
        + (f"checks with findings: {', '.join(warned)}" if warned else "every check passed")
    )
    if not report["passed"]:
        st.error("REJECTED by a check: " + text)
    elif warned:
        st.warning(text)
    else:
        st.success(text)
