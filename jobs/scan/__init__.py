"""The scan: a spec's slice over a grid, tiled onto the actors, into a Zarr result (and the weights at a grid point)."""
