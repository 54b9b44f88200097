"""Training health: per-parameter gradient statistics and learning-rate scans."""
