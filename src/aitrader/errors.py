"""Typed exception tree. Callers decide retries by type, never by message text.

Exit codes of the CLI follow the type: 2 for usage (ConfigError: a bad option, value or config,
or an UnknownName), 1 for everything that failed while running (AitraderError), 130 on Ctrl-C.
"""

from __future__ import annotations


class AitraderError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1


class ConfigError(AitraderError):
    """Invalid configuration or usage: names the key, the value and what is allowed."""

    exit_code = 2


class DataError(AitraderError):
    """Bad or missing market data: names the file, row and field where known."""


class StoreError(DataError):
    """The local store could not read or write a data set."""


class SourceError(DataError):
    """A data source (exchange, Yahoo, file) failed in a way that retrying will not fix."""


class TransientSourceError(SourceError):
    """A data source failed in a way that a retry with backoff may fix (network, 429, 5xx)."""


class RiskRejected(AitraderError):
    """The risk manager refused an order intent."""


class BrokerError(AitraderError):
    """A broker refused or failed an order."""


class TransientBrokerError(BrokerError):
    """A broker failure that a retry may fix."""


class UnknownName(ConfigError, SourceError):
    """A name the user typed that does not exist: sample, stored data set, exchange, market,
    timeframe. A usage error (exit code 2), and still a DataError/SourceError to callers."""
