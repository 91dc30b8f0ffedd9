"""shoal.engine."""
