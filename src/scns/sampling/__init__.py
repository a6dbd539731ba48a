"""scns.sampling."""
