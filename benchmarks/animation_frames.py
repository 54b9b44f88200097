"""CPU time of an animation's frames on one evaluator (as one actor holds them): the frame switch by
Evaluator.set_slice against a new Evaluator per frame (what an actor did before), in one process, one thread.

    python benchmarks/animation_frames.py ANIMATE_SPEC.yaml

The spec used in BENCHMARKS.md: the 8 curve checkpoints of a small CNN (channels 8, 16) trained between
two 3-epoch CNNs on 600 digits, a 41x41 grid of tiles 21.
"""

import sys
import time

import numpy as np
import torch

from cluster.tiling import iter_tiles, tile_coords
from jobs.curves.animate import build_frames
from jobs.specs import AnimateSpec, load_spec
from landscape.evaluator import Evaluator


def main(path: str) -> None:
    torch.set_num_threads(1)
    spec = load_spec(path, AnimateSpec)
    series, _, _ = build_frames(spec)
    x = np.linspace(spec.grid.x.min, spec.grid.x.max, spec.grid.x.num)
    y = np.linspace(spec.grid.y.min, spec.grid.y.max, spec.grid.y.num)
    tiles = list(iter_tiles(spec.grid_shape, spec.tile_shape, None))
    four = tile_coords(tiles[0], x, y)[:4]
    ev = Evaluator(series.problem_of(0), "cpu")
    ev.evaluate(four)  # the first compile in this process, for both ways
    print("plan:", {k: v for k, v in ev.describe().items() if k in ("compile", "shortcut", "points_per_pass")})
    for rep in range(2):  # per frame: switch, then 4 points
        t = time.process_time()
        fresh = [Evaluator(series.problem_of(f), "cpu").evaluate(four)["loss"] for f in range(series.frames)]
        a = (time.process_time() - t) / series.frames
        t = time.process_time()
        reused = []
        for f in range(series.frames):
            ev.set_slice(series.problem_of(f).slice)
            reused.append(ev.evaluate(four)["loss"])
        b = (time.process_time() - t) / series.frames
        same = all(np.allclose(p, q, rtol=1e-5) for p, q in zip(fresh, reused))
        print(f"frame switch + 4 points, CPU s per frame: new Evaluator {a:.3f}, set_slice {b:.3f}; same numbers: {same}")
    t = time.process_time()
    total = 0.0
    for f in range(series.frames):  # every tile of every frame, frame by frame as the queue hands them out
        ev.set_slice(series.problem_of(f).slice)
        total += sum(float(np.nansum(ev.evaluate(tile_coords(tl, x, y))["loss"])) for tl in tiles)
    print(f"all {series.frames} frames x {len(tiles)} tiles: {time.process_time() - t:.1f} s CPU (loss checksum {total:.6f})")


if __name__ == "__main__":
    main(sys.argv[1])
