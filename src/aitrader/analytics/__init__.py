"""Performance metrics (pure functions), reports and stress scenarios."""
