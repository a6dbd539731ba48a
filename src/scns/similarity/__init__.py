"""scns.similarity."""
