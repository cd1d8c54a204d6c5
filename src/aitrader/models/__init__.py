"""Models behind one protocol (scikit-learn estimator rules), calibration and model bundles.

Modules: ``base`` (protocol), ``gbm`` (LightGBM, default), ``forest``, ``linear`` (logistic),
``baselines`` (majority, persistence), ``xgb`` (optional XGBoost), ``factory``, ``calibration``
(isotonic / Platt), ``decision`` (probabilities → positions), ``predictor`` (the fitted chain),
``registry`` (bundle save/load), ``config`` (typed model configuration).
"""
