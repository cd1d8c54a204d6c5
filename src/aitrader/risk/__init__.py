"""Risk: position sizing, stop rules and the RiskManager every order intent passes through."""
