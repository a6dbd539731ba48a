"""scns.losses."""
