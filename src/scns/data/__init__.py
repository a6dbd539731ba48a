"""scns.data."""
