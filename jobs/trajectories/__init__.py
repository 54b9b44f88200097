"""Training trajectories: the path and PCA-plane slices, and their checkpoints' own values."""
