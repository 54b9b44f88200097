"""Mode connectivity: the curve slices, curve training, and the animation of a curve run."""
