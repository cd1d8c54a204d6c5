"""Honest validation: leak-free splits, the walk-forward pipeline, metrics, overfitting
statistics, Optuna tuning and MLflow tracking.

Modules: ``splits`` (walk-forward, purged k-fold, CPCV), ``walkforward`` (per-fold fitting),
``evaluation`` (out-of-sample scoring and P&L), ``metrics``, ``overfitting`` (PSR, DSR, PBO),
``leakage`` (causality audits), ``tuning``, ``tracking``, ``experiment`` (tracked runs),
``config`` (typed validation, tuning and tracking configuration).
"""
