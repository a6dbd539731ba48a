"""scns.report."""
