"""The Zarr v3 result store: one group per scan, written only by the driver.

Layout: `loss`/`accuracy` (dims ("y", "x") or ("x",), one chunk per tile,
NaN = not evaluated), coordinate arrays `x`/`y`, `tile_done` (1 once a tile's
data is stored; never inferred from chunk existence), `origin` and
`directions` (so any grid point's weights can be rebuilt), and the attribute
`landscape` with the spec, checkpoint positions, versions and timings.

`url` is a local path or an fsspec URL (`s3://bucket/prefix/scan.zarr` with
s3fs installed). S3 credentials and endpoint come from the standard AWS
settings (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL or
AWS_ENDPOINT_URL_S3, AWS_PROFILE), which botocore reads itself; only the
driver needs them, since Ray actors never touch the store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
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


def _io_errors() -> tuple[type[BaseException], ...]:
    """What storage trouble raises (not bugs): OSError, which s3fs makes of S3's
    replies, and botocore's own errors (no credentials, endpoint unreachable)."""
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return (OSError,)
    return (OSError, BotoCoreError)


def _storage_error(url: str, doing: str, e: BaseException) -> ResultError:
    """One line saying what failed on which URL, and where the settings come from."""
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
    hint = ""
    if url.startswith(("s3://", "s3a://")):
        hint = (
            "; create the bucket or correct the URL"
            if isinstance(e, FileNotFoundError)
            else "; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and AWS_ENDPOINT_URL"
        )
    return ResultError(f"cannot {doing} {url}: {reason}{hint}")


@contextlib.contextmanager
def storage_errors(url: str, doing: str):
    """Storage trouble inside the block becomes a one-line ResultError naming `url`."""
    try:
        yield
    except _io_errors() as e:
        raise _storage_error(str(url), doing, e) from None


def filesystem(url: str, storage_options: dict | None = None):
    """(filesystem, path) for a URL, with a fresh listing cache: zarr writes through its own instance."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as e:  # fsspec names the package to install, e.g. s3fs
        extra = " (pip install 'landscape[s3]')" if url.startswith(("s3://", "s3a://")) else ""
        raise ResultError(f"cannot open {url}: {e}{extra}") from None
    except ValueError as e:  # unknown protocol
        raise ResultError(f"cannot open {url}: {e}") from None
    fs.invalidate_cache()
    return fs, path


def _exists(url: str, storage_options: dict | None) -> bool:
    if "://" not in url:
        return Path(url).exists()
    fs, path = filesystem(url, storage_options)
    with storage_errors(url, "read"):
        return fs.exists(path)


def check_writable(url: str, storage_options: dict | None = None) -> None:
    """ResultError now, before any evaluation, if `url` cannot be written:
    a missing bucket, bad credentials, an unreachable endpoint, a read-only folder."""
    url = str(url)
    if "://" not in url:
        with storage_errors(url, "write"):
            parent = Path(url).absolute().parent
            parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=parent):
                pass
        return
    fs, path = filesystem(url, storage_options)
    with storage_errors(url, "write"):
        # Object stores have no folders to test: write and remove one small object.
        probe = f"{path.rstrip('/')}/.landscape-write-check"
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)


class ResultStore:
    def __init__(self, group: zarr.Group, url: str | None = None):
        self.group = group
        self.url = str(url) if url is not None else str(group.store_path)  # for messages

    # -- opening -------------------------------------------------------------
    @classmethod
    def open(cls, url: str, mode: str = "r", storage_options: dict | None = None) -> "ResultStore":
        """An existing result; ResultError if there is none or it is not ours."""
        if not _exists(str(url), storage_options):
            raise ResultError(f"no result at {str(url)!r}; run `landscape run SPEC --out {url}` first")
        try:
            group = zarr.open_group(str(url), mode=mode, storage_options=storage_options)
        except FileNotFoundError as e:  # it exists (checked above) but has no zarr.json
            raise ResultError(f"{str(url)!r} is not a Zarr group: {str(e).splitlines()[0]}") from e
        except _io_errors() as e:
            raise _storage_error(str(url), "read", e) from None
        except Exception as e:  # metadata zarr does not understand
            raise ResultError(f"{str(url)!r} is not a Zarr group: {str(e).splitlines()[0]}") from e
        if group.attrs.get(ATTR, {}).get("format") != FORMAT:
            raise ResultError(f"{str(url)!r} is not a landscape result (no '{ATTR}' attributes)")
        return cls(group, url)

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
        with storage_errors(url, "write"):
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
            tshape = tile_grid_shape(grid_shape, tile_shape)
            g.create_array("tile_done", shape=tshape, dtype="uint8", fill_value=0, dimension_names=tdims)
            chunk = (min(len(origin), 1 << 20),)
            g.create_array("origin", data=np.asarray(origin, dtype="float32"), chunks=chunk, dimension_names=("param",))
            g.create_array(
                "directions",
                data=np.asarray(directions, dtype="float32"),
                chunks=(1, chunk[0]),
                dimension_names=("direction", "param"),
            )
            g.attrs[ATTR] = {**meta, "format": FORMAT, "status": "running", "started_at": now()}
            store = cls(g, url)
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
        with storage_errors(self.url, "update"):
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
        with storage_errors(self.url, f"write tile {tile.index} to"):  # tiles already done stay done: resumable
            for name in ("loss", "accuracy"):
                self.group[name][tile.slices] = np.asarray(results[name], dtype="float32").reshape(tile.shape)
            self.group["tile_done"][tile.index] = 1
