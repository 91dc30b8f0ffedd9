"""The shared store: PostgreSQL through asyncpg, a fleet's coordinator."""
