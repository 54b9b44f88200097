"""Ray orchestration: tiling, the actor shell, the scheduler, the lease and the Zarr result store."""

from .driver import DriverReport, evaluate_tiles, run_work
from .session import ActorRequest, plan_actors, ray_session
from .store import ArrayDef, ResultStore, ResultWriter, inspect_output
from .tiling import Tile, iter_tiles, make_tiles, tile_coords

__all__ = [
    "ActorRequest", "ArrayDef", "DriverReport", "ResultStore", "ResultWriter", "Tile", "evaluate_tiles",
    "inspect_output", "iter_tiles", "make_tiles", "plan_actors", "ray_session", "run_work", "tile_coords",
]
