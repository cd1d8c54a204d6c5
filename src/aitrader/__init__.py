"""aitrader: AI-assisted trading bot — data, leak-free ML, backtests, paper and live."""

__version__ = "0.1.0"
