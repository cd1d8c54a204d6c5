"""The news feeds in their real formats (RSS 2.0, Atom, CryptoPanic-style JSON), served on
127.0.0.1 for the sentiment tests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from local_http import JsonHandler, serve

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Chain Wire</title><link>http://127.0.0.1/</link>
<description>test feed</description>
<item><title>Bitcoin surges to a record high as investors cheer strong gains</title>
<link>http://127.0.0.1/a1</link><guid>a1</guid>
<pubDate>Mon, 01 Mar 2021 10:30:00 +0000</pubDate></item>
<item><title>Exchange hacked, millions stolen as crypto prices crash</title>
<link>http://127.0.0.1/a2</link><pubDate>Mon, 01 Mar 2021 13:10:00 +0200</pubDate></item>
<item><title>An item without a date</title><link>http://127.0.0.1/a3</link></item>
</channel></rss>"""
ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Ledger Times</title><id>urn:lt</id>
<updated>2021-03-01T15:00:00Z</updated>
<entry><title>Regulators approve a clear crypto framework; markets rally</title>
<link href="http://127.0.0.1/b1"/><id>urn:b1</id>
<published>2021-03-01T09:00:00-05:00</published><updated>2021-03-01T09:05:00-05:00</updated>
</entry></feed>"""
PANIC = {
    "count": 2,
    "next": None,
    "previous": None,
    "results": [
        {
            "kind": "news",
            "domain": "example.com",
            "source": {"title": "CryptoDaily", "region": "en", "domain": "example.com"},
            "title": "Ethereum upgrade delayed amid fears of a critical bug",
            "published_at": "2021-03-01T15:45:00Z",
            "id": 101,
            "url": "https://cryptopanic.com/news/101/ethereum-upgrade-delayed",
            "created_at": "2021-03-01T15:45:10Z",
            "currencies": [{"code": "ETH", "title": "Ethereum"}],
        },
        {"kind": "news", "title": "No time here", "id": 102},
    ],
}
PAGES = {
    "/rss.xml": ("application/rss+xml", RSS),
    "/atom.xml": ("application/atom+xml", ATOM),
    "/api/posts/": ("application/json", json.dumps(PANIC).encode()),
}


class _Feeds(JsonHandler):
    def do_GET(self) -> None:
        page = PAGES.get(self.path)
        if page is None:
            self._send(500 if self.path == "/broken" else 404, "error")
            return
        self._send(200, page[1].decode(), ctype=page[0])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve(_Feeds, None) as url:
        yield url
