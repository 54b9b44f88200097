"""What users run: validated specs, job entry points and the `landscape` CLI."""
