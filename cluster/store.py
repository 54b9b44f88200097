"""The Zarr v3 result store: one group per scan, written only by the driver.

Layout: `loss`/`accuracy` (dims ("y", "x") or ("x",), one chunk per tile,
NaN = not evaluated), coordinate arrays `x`/`y`, `tile_done` (1 once a tile's
data is stored; never inferred from chunk existence), `origin` and
`directions` (so any grid point's weights can be rebuilt), and the attribute
`landscape` with the spec, checkpoint positions, versions and timings.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import zarr

from landscape.errors import ResultError

from .tiling import Tile, tile_grid_shape

ATTR = "landscape"
FORMAT = "landscape-result/1"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _exists(url: str, storage_options: dict | None) -> bool:
    if "://" not in url:
        return Path(url).exists()
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fs.exists(path)


class ResultStore:
    def __init__(self, group: zarr.Group):
        self.group = group

    # -- opening -------------------------------------------------------------
    @classmethod
    def open(cls, url: str, mode: str = "r", storage_options: dict | None = None) -> "ResultStore":
        """An existing result; ResultError if there is none or it is not ours."""
        if not _exists(str(url), storage_options):
            raise ResultError(f"no result at {str(url)!r}; run `landscape run SPEC --out {url}` first")
        try:
            group = zarr.open_group(str(url), mode=mode, storage_options=storage_options)
        except Exception as e:
            raise ResultError(f"{str(url)!r} is not a Zarr group: {str(e).splitlines()[0]}") from e
        if group.attrs.get(ATTR, {}).get("format") != FORMAT:
            raise ResultError(f"{str(url)!r} is not a landscape result (no '{ATTR}' attributes)")
        return cls(group)

    @classmethod
    def probe(cls, url: str, storage_options: dict | None = None) -> "ResultStore | None":
        """The result at `url`, None if nothing is there; ResultError if something else is."""
        if not _exists(str(url), storage_options):
            return None
        try:
            return cls.open(url, mode="r+", storage_options=storage_options)
        except ResultError:
            raise ResultError(
                f"output {str(url)!r} exists and is not a landscape result; choose another --out or pass --overwrite"
            ) from None

    @classmethod
    def create(
        cls,
        url: str,
        *,
        grid_shape: tuple[int, ...],
        tile_shape: tuple[int, ...],
        x: np.ndarray,
        y: np.ndarray | None,
        origin: np.ndarray,
        directions: np.ndarray,
        meta: dict,
        storage_options: dict | None = None,
    ) -> "ResultStore":
        """A fresh result (anything at `url` is replaced), status "running"."""
        g = zarr.open_group(str(url), mode="w", storage_options=storage_options)
        dims = ("y", "x") if len(grid_shape) == 2 else ("x",)
        for name in ("loss", "accuracy"):
            g.create_array(
                name, shape=grid_shape, chunks=tile_shape, dtype="float32", fill_value=np.nan, dimension_names=dims
            )
        g.create_array("x", data=np.asarray(x, dtype="float64"), dimension_names=("x",))
        if y is not None:
            g.create_array("y", data=np.asarray(y, dtype="float64"), dimension_names=("y",))
        tdims = ("tile_y", "tile_x") if len(grid_shape) == 2 else ("tile_x",)
        g.create_array(
            "tile_done", shape=tile_grid_shape(grid_shape, tile_shape), dtype="uint8", fill_value=0, dimension_names=tdims
        )
        chunk = (min(len(origin), 1 << 20),)
        g.create_array("origin", data=np.asarray(origin, dtype="float32"), chunks=chunk, dimension_names=("param",))
        g.create_array(
            "directions",
            data=np.asarray(directions, dtype="float32"),
            chunks=(1, chunk[0]),
            dimension_names=("direction", "param"),
        )
        g.attrs[ATTR] = {**meta, "format": FORMAT, "status": "running", "started_at": now()}
        store = cls(g)
        store._consolidate()
        return store

    def _consolidate(self) -> None:
        # xarray.open_zarr reads consolidated metadata first: keep it current.
        with warnings.catch_warnings():  # "not yet part of the v3 spec": known, wanted here
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(self.group.store, path=self.group.path or None)

    # -- reading -------------------------------------------------------------
    @property
    def meta(self) -> dict:
        return dict(self.group.attrs[ATTR])

    def update_meta(self, **changes) -> None:
        self.group.attrs[ATTR] = {**self.meta, **changes}
        self._consolidate()

    def done_mask(self) -> np.ndarray:
        return self.group["tile_done"][...].astype(bool)

    def pending(self, tiles: list[Tile]) -> list[Tile]:
        done = self.done_mask()
        return [t for t in tiles if not done[t.index]]

    # -- writing (driver only) -----------------------------------------------
    def write_tile(self, tile: Tile, results: dict[str, np.ndarray]) -> None:
        """Store a tile's values, then mark it done; repeating it is harmless."""
        for name in ("loss", "accuracy"):
            self.group[name][tile.slices] = np.asarray(results[name], dtype="float32").reshape(tile.shape)
        self.group["tile_done"][tile.index] = 1
