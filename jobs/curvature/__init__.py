"""Curvature: the Hessian spectrum at a point and the hessian_plane slice."""
