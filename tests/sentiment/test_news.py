"""News sentiment: real RSS 2.0 / Atom / CryptoPanic JSON served on 127.0.0.1, scored with
VADER into the store; the per-bar feature never lets a headline reach a bar that opened before
it was published (+ lag)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from aitrader.cli import app
from aitrader.errors import ConfigError, DataError
from aitrader.features import registry
from aitrader.features.bars import bars_from_candles
from aitrader.features.causality import check_causality
from aitrader.features.featureset import build_features
from aitrader.features.news import news_values
from aitrader.features.spec import FeatureSpec
from aitrader.sentiment.config import SentimentConfig
from aitrader.sentiment.feeds import Headline, fetch, parse
from aitrader.sentiment.scoring import VaderScorer, make_scorer
from aitrader.sentiment.store import append, load_scored


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_feeds_in_the_real_formats_give_utc_publication_times(server: str) -> None:
    rss = parse(fetch(f"{server}/rss.xml", 5), "rss")
    assert [(h.title[:14], h.published) for h in rss.headlines] == [
        ("Bitcoin surges", utc("2021-03-01 10:30")),
        ("Exchange hacke", utc("2021-03-01 11:10")),  # +0200 → UTC
    ]
    assert rss.headlines[0].source == "Chain Wire"
    assert rss.skipped == ["entry 2: no publication time"]
    atom = parse(fetch(f"{server}/atom.xml", 5), "atom")
    assert atom.headlines[0].published == utc("2021-03-01 14:00")  # published, not updated
    assert atom.headlines[0].url == "http://127.0.0.1/b1"
    panic = parse(fetch(f"{server}/api/posts/", 5), "api")
    assert [(h.source, h.published) for h in panic.headlines] == [
        ("CryptoDaily", utc("2021-03-01 15:45"))
    ]
    assert panic.skipped == ["item 1: no readable published_at"]
    with pytest.raises(DataError, match="broken: HTTP 500"):
        fetch(f"{server}/broken", 5)
    with pytest.raises(DataError, match="not a readable RSS/Atom feed"):
        parse(b"<html><p>oops", "x")


def test_news_fetch_scores_and_stores_each_headline_once(server: str, tmp_path: Path) -> None:
    store = tmp_path / "news.jsonl"
    feeds = [{"url": f"{server}{p}"} for p in ("/rss.xml", "/atom.xml", "/api/posts/", "/broken")]
    config = tmp_path / "aitrader.yaml"
    config.write_text(yaml.safe_dump({"sentiment": {"feeds": feeds, "store": str(store)}}))
    args = ["--config", str(config), "news", "fetch", "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    reports = json.loads(first.stdout)["feeds"]
    assert [r["added"] for r in reports] == [2, 1, 1, 0]
    assert "HTTP 500" in reports[3]["error"]
    again = json.loads(CliRunner().invoke(app, args).stdout)["feeds"]
    assert [r["added"] for r in again] == [0, 0, 0, 0]  # nothing doubled
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert len(records) == 4 and {r["scorer"] for r in records} == {"vader"}
    scores = {r["title"][:8]: r["score"] for r in records}
    assert scores["Bitcoin "] > 0.3 and scores["Exchange"] < -0.3
    published, values = load_scored(store)
    assert published.tolist() == sorted(published.tolist()) and values.shape == (4,)


def test_vader_by_default_and_finbert_only_from_local_weights(tmp_path: Path) -> None:
    scores = VaderScorer().score(["great gains, strong rally", "terrible losses and fraud"])
    assert scores[0] > 0 > scores[1]
    with pytest.raises(ConfigError, match="finbert_dir: a local directory"):
        make_scorer(SentimentConfig(scorer="finbert"))
    with pytest.raises(ConfigError, match="no FinBERT weights there"):
        make_scorer(SentimentConfig(scorer="finbert", finbert_dir=tmp_path))


def _candles(start: str, n: int) -> pd.DataFrame:
    index = pd.date_range(start, periods=n, freq="1h", tz="UTC", name="timestamp")
    close = 100 + np.arange(n, dtype=float)
    frame = {"open": close, "high": close + 1, "low": close - 1, "close": close}
    return pd.DataFrame(frame | {"volume": np.ones(n)}, index=index)


def _store(path: Path, times: list[str], scores: list[float]) -> Path:
    headlines = [Headline(utc(t), f"h{i}", "s", f"u{i}") for i, t in enumerate(times)]
    append(path, headlines, np.array(scores), "vader")
    return path


def test_no_headline_reaches_a_bar_opened_before_it_was_published_plus_lag(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path / "n.jsonl", ["2021-03-01 10:30", "2021-03-01 10:55"], [0.8, -0.4])
    spec = FeatureSpec(name="news_sentiment", params={"store": str(store), "lag_minutes": 5})
    frame = build_features(_candles("2021-03-01 09:00", 6), [spec], timeframe="1h").frame
    count = frame["news_count_24h"]
    # 10:30 + 5 min is after the 10:00 open; 10:55 + 5 min = 11:00 counts from the 11:00 bar
    assert count.tolist() == [0, 0, 2, 2, 2, 2]
    assert frame["news_mean_24h"].iloc[2] == pytest.approx(0.2)
    assert frame["news_decay_6h"].iloc[1] == 0.0
    late = FeatureSpec(name="news_sentiment", params={"store": str(store), "lag_minutes": 6})
    later = build_features(_candles("2021-03-01 09:00", 6), [late], timeframe="1h").frame
    assert later["news_count_24h"].tolist() == [0, 0, 1, 2, 2, 2]


def test_feature_equals_a_brute_force_count_and_is_causal(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    candles = _candles("2021-01-01", 600)
    start = candles.index[0].value
    times = np.sort(start + rng.integers(-48, 600, 300) * 3_600_000_000_000 // 7 * 3)
    scores = rng.uniform(-1, 1, times.size)
    store = _store(tmp_path / "r.jsonl", [str(pd.Timestamp(t)) for t in times], list(scores))
    spec = FeatureSpec(name="news_sentiment", params={"store": str(store), "lag_minutes": 30})
    _, params = registry.resolve(spec.name, spec.params)
    ts = candles.index.as_unit("ns").asi8
    count, mean, decay, _ = news_values(ts, *load_scored(store), params)
    avail = times + 30 * 60_000_000_000
    for i in (0, 17, 250, 599):
        seen = (avail <= ts[i]) & (avail > ts[i] - 24 * 3_600_000_000_000)
        assert count[i] == seen.sum()
        assert mean[i] == pytest.approx(scores[seen].mean() if seen.any() else 0.0)
        ages = (ts[i] - avail[avail <= ts[i]]) / 3_600_000_000_000
        assert decay[i] == pytest.approx((scores[avail <= ts[i]] * 0.5 ** (ages / 6)).sum())
    violations = check_causality(bars_from_candles(candles), spec, [50, 300, 599], 3600)
    assert not violations


def test_a_damaged_store_names_its_line(tmp_path: Path) -> None:
    store = tmp_path / "bad.jsonl"
    store.write_text('{"key": "a", "published": "2021-01-01T00:00:00Z", "score": 0.1}\nnot json\n')
    with pytest.raises(DataError, match="line 2 is not a stored headline"):
        load_scored(store)


def test_news_job_summarises_and_notifies_failed_feeds(server: str, tmp_path: Path) -> None:
    from aitrader.config import Settings
    from aitrader.sentiment.collect import news_job

    feeds = [{"url": f"{server}/atom.xml"}, {"url": f"{server}/broken", "name": "down"}]
    settings = Settings.model_validate(
        {"data": {"dir": str(tmp_path)}, "sentiment": {"feeds": feeds}}
    )
    sent: list[str] = []
    assert news_job(settings, sent.append) == "news: 1 new headline(s) from 1/2 feeds"
    assert sent == [f"news feed down failed: news feed {server}/broken: HTTP 500"]
    assert len((tmp_path / "news.jsonl").read_text().splitlines()) == 1
    with pytest.raises(ConfigError, match="no news feeds configured"):
        news_job(Settings.model_validate({"data": {"dir": str(tmp_path)}}), sent.append)
