"""Sharing a job between processes: heartbeats, reclaiming the dead, store patience."""
