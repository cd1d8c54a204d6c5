"""The web dashboard (Streamlit): ``aitrader dashboard`` runs :mod:`aitrader.dashboard.app`.

It reads a run through the monitoring API (``aitrader serve``) with its bearer token, and
candles, data quality and model bundles read-only from the store and the bundle directory.
Controls (pause, resume, flatten, kill) go through the API. Nothing here is imported by the
core CLI: Streamlit is an optional dependency (the ``dashboard`` extra).
"""
