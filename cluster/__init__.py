"""Ray orchestration: tiling, the actor shell, the scheduler, the Zarr result store."""

from .driver import DriverReport, evaluate_tiles
from .session import ActorRequest, plan_actors, ray_session
from .store import ResultStore
from .tiling import Tile, make_tiles, tile_coords

__all__ = ["ActorRequest", "DriverReport", "ResultStore", "Tile", "evaluate_tiles", "make_tiles", "plan_actors", "ray_session", "tile_coords"]
