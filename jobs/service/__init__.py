"""The remote service: submitting jobs to a Ray cluster, following them, fetching results."""
