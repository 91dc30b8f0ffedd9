"""What a fetched page yields: its fields and the links a crawl follows."""
