"""scns.objectives."""
