"""What users run: validated specs, job entry points and the `landscape` CLI."""

# No imports here: a job's bootstrap (service/bootstrap.py) runs under this package on a Python that may lack them.
