"""scns.models."""
