"""Model: how good the trading model's probabilities are — live (the API's /ml-metrics, when it
has that route) and on the bars after the bundle's training window (calibration curve, p(win)
histogram, coverage vs win rate by threshold, feature importance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from aitrader.config import Settings
from aitrader.dashboard import charts, evaluation
from aitrader.dashboard.context import Context, missing
from aitrader.dashboard.stored import dataset_names, load, symbol_of


@st.cache_resource(show_spinner="loading the model bundle", max_entries=4)
def _bundle(path: str) -> Any:
    from aitrader.models.registry import load_bundle

    return load_bundle(path)


@st.cache_data(show_spinner="scoring the model on its out-of-training bars", max_entries=4)
def _outcomes(path: str, dataset: str, _settings: Settings) -> evaluation.Outcomes:
    data = load(dataset, str(_settings.data.dir))
    return evaluation.outcomes(_bundle(path), data.candles, data.timeframe, _settings)


def render(ctx: Context) -> None:
    st.title("Model")
    _live(ctx)
    st.subheader("Model bundle")
    given = str(ctx.config.bundle) if ctx.config.bundle is not None else ""
    path = st.text_input("Bundle directory (aitrader train -o DIR)", value=given)
    if not path:
        st.info(
            "Model bundle: not given — start with `aitrader dashboard --model DIR` or enter it."
        )
        return
    if not Path(path).is_dir():
        st.error(f"{path}: no such directory")
        return
    try:
        bundle = _bundle(path)
    except Exception as exc:  # a bundle that fails its checks: say why
        st.error(f"{path}: cannot load the bundle ({exc})")
        return
    _describe(bundle.info)
    if ctx.settings is None:
        st.error(f"The configuration cannot be read: {ctx.settings_error}")
        return
    _judged(ctx.settings, path, bundle)


def _figure(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else "—"


def _live_line(live: dict[str, Any], backtest: dict[str, Any]) -> str:
    """The live model's figures on realised outcomes beside its walk-forward ones, one line."""
    if not live.get("scored"):
        return f"Live model: {live.get('note') or 'no decision with a known outcome yet'}."
    return (
        f"Live model: **{live['scored']:,}** decisions with a known outcome — hit rate "
        f"**{_figure(live.get('hit_rate'), '.1%')}** (backtest "
        f"{_figure(backtest.get('accuracy'), '.1%')}), Brier "
        f"**{_figure(live.get('brier'), '.4f')}** (backtest {_figure(backtest.get('brier'), '.4f')}"
        f"), ECE **{_figure(live.get('ece'), '.3f')}** (backtest "
        f"{_figure(backtest.get('ece'), '.3f')})."
    )


def _live(ctx: Context) -> None:
    st.subheader("Live model (API)")
    answer = ctx.api.get("/ml-metrics")
    if missing(answer, "Live hit rate, Brier score, calibration and drift"):
        return
    data = answer.data if isinstance(answer.data, dict) else {}
    live, backtest = data.get("live") or {}, data.get("backtest") or {}
    st.markdown(_live_line(live, backtest))
    if live.get("calibration"):
        st.dataframe(pd.DataFrame(live["calibration"]), width="stretch")
    drift = data.get("drift") or {}
    st.caption(f"Drift: {drift.get('message') or 'no drift check has run yet'}")


def _describe(info: Any) -> None:
    tuned = info.thresholds()
    rows = {
        "model": info.model.get("kind", "?"),
        "label": f"{info.label_name} (horizon {info.horizon} bars)",
        "trained on": " → ".join(info.train_window),
        "calibrated on": " → ".join(info.calibration_window),
        "features": str(len(info.feature_columns)),
        "decision": "not tuned" if tuned is None else tuned.describe(),
        "created": info.created,
    }
    st.table(pd.Series(rows, name="value"))


def _judged(settings: Settings, path: str, bundle: Any) -> None:
    names = dataset_names(settings)
    tuned = bundle.info.thresholds()
    wanted = tuned.symbol if tuned is not None else None
    default = next((n for n in names if symbol_of(n) == wanted), names[0])
    dataset = st.selectbox("Judge it on", names, index=names.index(default))
    try:
        found = _outcomes(path, dataset, settings)
    except Exception as exc:  # wrong data for this bundle: say why
        st.error(f"{dataset}: cannot score the bundle on it ({exc})")
        return
    rows = found.rows
    st.markdown(
        f"Scored on **{len(rows):,} bars** after the training window ({found.first:%Y-%m-%d} → "
        f"{found.last:%Y-%m-%d}; the first of them calibrated the model). Base win rate "
        f"**{rows['won'].mean():.1%}**, Brier score **{evaluation.brier(rows):.4f}**."
    )
    top = st.columns(2)
    top[0].plotly_chart(
        charts.calibration_figure(evaluation.calibration_table(rows)), width="stretch"
    )
    top[1].plotly_chart(charts.histogram_figure(rows["p_win"], rows["won"]), width="stretch")
    low = st.columns(2)
    low[0].plotly_chart(charts.coverage_figure(evaluation.coverage_table(rows)), width="stretch")
    importance = evaluation.feature_importance(bundle)
    if importance is None:
        low[1].info("Feature importance: this model kind does not expose one.")
    else:
        low[1].plotly_chart(charts.importance_figure(importance), width="stretch")
