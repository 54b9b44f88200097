"""Ray orchestration: tiling, the actor shell, the scheduler, the lease and the Zarr result store.

Names are imported lazily (PEP 562): the CLI imports `cluster.interrupts` before it parses its
arguments, and Ray and Zarr (a second to import) are only for the commands that use them.
"""

from importlib import import_module

_LAZY = {
    "DriverReport": "driver", "evaluate_tiles": "driver", "run_work": "driver",
    "ActorRequest": "session", "plan_actors": "session", "ray_session": "session",
    "ArrayDef": "store", "ResultStore": "store", "ResultWriter": "store", "inspect_output": "store",
    "Tile": "tiling", "iter_tiles": "tiling", "make_tiles": "tiling", "tile_coords": "tiling",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'cluster' has no attribute {name!r}")
