"""Run it and watch it: the monitoring API over a run's ledger (``aitrader serve``), its
Prometheus metrics, and the controls that steer a run through the ledger's flags.

Only :mod:`aitrader.ops.api` and :mod:`aitrader.ops.server` import FastAPI and uvicorn; the
rest (token hashes, status, controls, views, metrics) is plain Python over the ledger.
"""
