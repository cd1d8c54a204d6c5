"""Fetch every configured feed, score its headlines and add the new ones to the store
(``aitrader news fetch`` and the scheduler's ``news`` job)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from aitrader.errors import ConfigError, DataError
from aitrader.sentiment.config import SentimentConfig
from aitrader.sentiment.feeds import fetch, parse
from aitrader.sentiment.scoring import make_scorer
from aitrader.sentiment.store import append

if TYPE_CHECKING:
    from aitrader.config import Settings


@dataclass(frozen=True)
class FeedReport:
    """What one feed gave: headlines read, new ones stored, items skipped, or the error."""

    feed: str
    headlines: int
    added: int
    skipped: int
    error: str | None = None


def store_path(config: SentimentConfig, data_dir: Path) -> Path:
    """The configured headline store, or ``DATA_DIR/news.jsonl``."""
    return Path(config.store or Path(data_dir) / "news.jsonl").expanduser()


def collect(config: SentimentConfig, store: Path) -> list[FeedReport]:
    """Fetch, score and store every feed; a failing feed is reported, the others still run."""
    if not config.feeds:
        raise ConfigError("no news feeds configured: add sentiment.feeds (url, format)")
    scorer = make_scorer(config)
    reports = []
    for feed in config.feeds:
        name = feed.name or urlparse(feed.url).hostname or feed.url
        try:
            parsed = parse(fetch(feed.url, config.timeout), feed.url, feed.format)
        except DataError as exc:
            reports.append(FeedReport(name, 0, 0, 0, str(exc)))
            continue
        scores = scorer.score([h.title for h in parsed.headlines])
        added = append(store, parsed.headlines, scores, scorer.name)
        reports.append(FeedReport(name, len(parsed.headlines), added, len(parsed.skipped)))
    return reports


def news_job(settings: Settings, notify: Callable[[str], None]) -> str:
    """Scheduler job: fetch the feeds into the store; returns a one-line summary."""
    reports = collect(settings.sentiment, store_path(settings.sentiment, settings.data.dir))
    failed = [r for r in reports if r.error]
    for report in failed:
        notify(f"news feed {report.feed} failed: {report.error}")
    added = sum(r.added for r in reports)
    return f"news: {added} new headline(s) from {len(reports) - len(failed)}/{len(reports)} feeds"
