"""Decisions: probabilities → target positions, adaptive modes and regimes, trade plans."""
