"""Models behind one protocol (scikit-learn estimator rules), calibration and model bundles.

Modules: ``kinds`` (the model-kind registry), ``base`` (protocol), one module per kind: ``gbm``
(LightGBM, default), ``forest``, ``linear`` (logistic), ``baselines`` (majority, persistence),
``xgb`` (optional XGBoost); ``factory`` (config → model), ``calibration`` (isotonic / Platt),
``decision`` (probabilities → positions), ``predictor`` (the fitted chain), ``codecs`` and
``bundle_files`` (safe bundle files, hash manifest), ``registry`` (bundle save/load),
``config`` (typed model configuration).
"""
