"""The run: one runner for a JobSpec on a store, and the job run it drives."""
