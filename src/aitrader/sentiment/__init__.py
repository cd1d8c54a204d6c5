"""News sentiment: headlines from RSS/Atom feeds and a JSON news API, scored (VADER by default)
into a local headline store that the ``news_sentiment`` feature reads."""
