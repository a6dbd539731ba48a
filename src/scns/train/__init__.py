"""scns.train."""
