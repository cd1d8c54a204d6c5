"""Market data: sources (samples, files, ccxt, Yahoo), store, quality checks, resampling."""
