"""Built-in strategies, one file each, registered like a user's own (see aitrader.strategy)."""
