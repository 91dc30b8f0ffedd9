"""shoal.store."""
