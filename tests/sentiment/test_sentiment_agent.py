"""A sentiment agent inside the meta-agent: headlines that lead the market are found with a
publication lag shorter than their lead, and are useless (no leak) with a longer one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import momentum_walk

from aitrader.config import CostsConfig
from aitrader.features.spec import FeatureSpec
from aitrader.labels.config import LabelConfig
from aitrader.models.config import ModelConfig
from aitrader.models.factory import make_model
from aitrader.models.meta import MetaModel
from aitrader.sentiment.feeds import Headline
from aitrader.sentiment.store import append
from aitrader.validation.walkforward import prepare


def leading_news(candles: pd.DataFrame, path: Path) -> Path:
    """One headline 10 minutes before each bar opens whose score leans to the sign of the
    *next* bar's return (what the model at this bar's close predicts)."""
    rng = np.random.default_rng(4)
    close = candles["close"].to_numpy()
    ahead = np.sign(np.r_[close[1:] / close[:-1] - 1.0, 0.0])  # row i's label: bar i+1
    times = candles.index - pd.Timedelta(minutes=10)
    scores = np.clip(0.5 * ahead + rng.normal(0.0, 0.5, len(candles)), -1, 1)
    headlines = [Headline(t, f"n{i}", "wire", f"u{i}") for i, t in enumerate(times)]
    append(path, headlines, scores, "test")
    return path


@pytest.mark.parametrize(("lag", "finds"), [(5, True), (15, False)])
def test_sentiment_agent_sees_news_only_after_its_lag(
    tmp_path: Path, lag: int, finds: bool
) -> None:
    candles = momentum_walk(3000, seed=5, beta=0.0)
    store = leading_news(candles, tmp_path / "news.jsonl")
    specs = [
        FeatureSpec(
            name="news_sentiment",
            params={"store": str(store), "lag_minutes": lag, "window_hours": 1}
            | {"halflife_hours": 0.25, "baseline_hours": 24},
        ),
        FeatureSpec(name="rsi"),
    ]
    prepared = prepare(candles, specs, LabelConfig(kind="binary"), CostsConfig(), "1h")
    agents = [
        {"kind": "logistic", "name": "news", "columns": ["news_"]},
        {"kind": "logistic", "name": "tech", "columns": ["rsi"]},
    ]
    config = ModelConfig.model_validate({"kind": "meta", "meta": {"agents": agents}})
    model = make_model(config)
    assert isinstance(model, MetaModel)
    model.fit(prepared.X.iloc[:2000], prepared.y[:2000])
    hits = float((model.predict(prepared.X.iloc[2000:]) == prepared.y[2000:]).mean())
    news = model.weights_[0][0]
    if finds:
        assert hits > 0.75 and news > 0.9
    else:  # the 10-minute lead is inside the 15-minute lag: the news arrives a bar too late
        assert hits < 0.56 and model.skills_[0] < 0.01
