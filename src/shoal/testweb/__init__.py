"""shoal.testweb."""
