"""aitrader: AI-assisted trading bot — data, leak-free ML, backtests, paper and live."""

__version__ = "0.1.0"

DEFAULT_CONFIG_NAME = "aitrader.yaml"
"""The config file's default name (here, not in :mod:`aitrader.config`: the CLI's help is quick)."""
