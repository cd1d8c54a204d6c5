"""Headlines from RSS 2.0 / Atom feeds (feedparser) and CryptoPanic-style JSON, with their
publication time in UTC.

A headline without a readable publication time is skipped and counted, never given a guessed
time: placing it in time is what keeps it from influencing bars it could not have.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import pandas as pd

from aitrader.errors import DataError

Format = Literal["auto", "rss", "atom", "json"]


@dataclass(frozen=True)
class Headline:
    """One news item: publication time (UTC), title, source and link."""

    published: pd.Timestamp
    title: str
    source: str
    url: str

    def key(self) -> str:
        """Identity in the store: the link, or the title and time when there is none."""
        return self.url or f"{self.title}@{self.published.isoformat()}"


@dataclass(frozen=True)
class Parsed:
    """The headlines of one feed and the reasons items were skipped."""

    headlines: list[Headline]
    skipped: list[str] = field(default_factory=list)


def fetch(url: str, timeout: float) -> bytes:
    """The body of ``url`` (DataError naming the URL on a network error or HTTP error)."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise DataError(f"news feed {url}: HTTP {exc.response.status_code}") from None
    except httpx.HTTPError as exc:
        raise DataError(f"news feed {url}: {type(exc).__name__}: {exc}") from None
    return response.content


def _utc(value: Any) -> pd.Timestamp | None:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if pd.isna(stamp):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _host(url: str) -> str:
    return urlparse(url).hostname or url


def parse_json(data: bytes, url: str) -> Parsed:
    """CryptoPanic-style JSON: ``{"results": [{"title", "published_at", "url", "source":
    {"title"}}]}`` (a bare list of such items is accepted too)."""
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise DataError(f"news feed {url}: not JSON ({exc})") from None
    items = payload.get("results") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise DataError(f"news feed {url}: JSON without a 'results' list of news items")
    out, skipped = [], []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not str(item.get("title") or "").strip():
            skipped.append(f"item {n}: no title")
            continue
        published = _utc(item.get("published_at") or item.get("created_at"))
        if published is None:
            skipped.append(f"item {n}: no readable published_at")
            continue
        source = item.get("source")
        name = source.get("title") if isinstance(source, dict) else None
        link = str(item.get("url") or "")
        out.append(Headline(published, str(item["title"]).strip(), name or _host(url), link))
    return Parsed(out, skipped)


def parse_xml(data: bytes, url: str) -> Parsed:
    """An RSS 2.0 or Atom feed (feedparser): ``published`` or else ``updated`` times."""
    import feedparser

    feed = feedparser.parse(data)
    if feed.bozo and not feed.entries:
        raise DataError(f"news feed {url}: not a readable RSS/Atom feed ({feed.bozo_exception})")
    source = str(feed.feed.get("title") or _host(url))
    out, skipped = [], []
    for n, entry in enumerate(feed.entries):
        title = str(entry.get("title") or "").strip()
        parsed = entry.get("published_parsed") or entry.get("updated_parsed")
        if not title or parsed is None:
            skipped.append(f"entry {n}: no {'title' if not title else 'publication time'}")
            continue
        published = pd.Timestamp(calendar.timegm(parsed), unit="s", tz="UTC")
        out.append(Headline(published, title, source, str(entry.get("link") or "")))
    return Parsed(out, skipped)


def parse(data: bytes, url: str, fmt: Format = "auto") -> Parsed:
    """Headlines of a feed body; ``auto`` tells JSON from XML by the first character."""
    if fmt == "auto":
        fmt = "json" if data.lstrip()[:1] in (b"{", b"[") else "rss"
    return parse_json(data, url) if fmt == "json" else parse_xml(data, url)
