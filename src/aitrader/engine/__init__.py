"""Execution engine shared by backtest, paper and live: types, simulated broker, the loop."""
