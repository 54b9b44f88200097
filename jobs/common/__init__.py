"""Shared pieces of every job: the problem's data, model and checkpoints from a spec, reporting, CLI flags, identity."""
