"""Leak-free features: pure indicator functions, a registry, declared feature sets.

Modules (import from them directly; this package stays light so that ``aitrader.config`` can
import :mod:`aitrader.features.spec` without pulling in TA-Lib or numba):

- ``indicators``, ``volatility``, ``volume``, ``levels``, ``statistics``, ``microstructure``,
  ``calendar``: pure functions, arrays in → arrays out, each documenting its warm-up;
- ``registry`` / ``catalog``: every feature with its group, parameters and warm-up;
- ``spec``: the typed ``FeaturesConfig`` (the ``features:`` config section) and the default set;
- ``featureset``: ``build_features(candles, spec) -> FeatureMatrix``;
- ``mtf``: higher-timeframe features aligned to closed higher-timeframe bars;
- ``scaling``: a fitted scaler (fit on the training window only);
- ``causality``: the truncation harness proving that no feature looks ahead.
"""
