"""Market data: sources (bundled samples, files, ccxt exchanges, Yahoo), store, quality, resampling."""
