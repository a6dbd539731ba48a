"""scns.commands."""
