"""The remote service: submitting jobs to a Ray cluster, following them, fetching results."""

# No imports here: a job's bootstrap (bootstrap.py) runs under this package on a Python that may lack them.
