"""Typed configuration of the news feeds, the scorer and the headline store (``sentiment:``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from aitrader.frozen import Frozen


class FeedConfig(Frozen):
    """One news source: an RSS 2.0 or Atom feed, or a CryptoPanic-style JSON API."""

    url: str = Field(min_length=1, description="http(s) URL of the feed or API page")
    format: Literal["auto", "rss", "atom", "json"] = "auto"
    name: str | None = Field(None, description="label in reports (default: the URL's host)")


class SentimentConfig(Frozen):
    """Where headlines come from, how they are scored and where they are kept.

    The ``news_sentiment`` feature reads the store (its ``store`` parameter) and applies the
    publication lag; ``aitrader news fetch`` (or the ``news`` job) fills it.
    """

    feeds: tuple[FeedConfig, ...] = ()
    store: Path | None = Field(None, description="headline store (default: DATA_DIR/news.jsonl)")
    scorer: Literal["vader", "finbert"] = "vader"
    finbert_dir: Path | None = Field(
        None, description="local directory with FinBERT weights (never downloaded at run time)"
    )
    timeout: float = Field(10.0, gt=0, le=120, description="seconds per feed request")
