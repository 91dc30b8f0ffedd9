"""shoal: fast, polite, crash-safe web fetching and crawling with asyncio."""
