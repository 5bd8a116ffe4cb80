"""schedctl: recurring job scheduling for a PostgreSQL-backed crawling service."""

__version__ = "0.4.0"
