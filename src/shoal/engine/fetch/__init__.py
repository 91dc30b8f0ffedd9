"""Fetching: the HTTP transports, fetch processes and the messages between them."""
