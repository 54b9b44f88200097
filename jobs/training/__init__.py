"""Plain training: `landscape train` and the checks every training job shares."""
