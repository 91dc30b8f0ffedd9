"""shoal.export."""
