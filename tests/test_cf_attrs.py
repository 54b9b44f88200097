"""Results open in xarray (a dependency of the package) with CF-style `long_name` and `units`."""

from __future__ import annotations

import numpy as np
import xarray as xr

from cluster.store import ArrayDef, ResultWriter


def test_arrays_and_coordinates_carry_long_name_and_units(tmp_path):
    url = str(tmp_path / "r.zarr")
    x, y = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 3)  # non-square
    with ResultWriter(url, identity="id") as w:
        store = w.create([
            ArrayDef("loss", ("y", "x"), (3, 5), "float32", (3, 5), np.nan, attrs={"description": "mean loss over the data"}),
            ArrayDef("seconds", ("y", "x"), (3, 5), "float32", (3, 5), np.nan,
                     attrs={"description": "time per point", "units": "s"}),
            ArrayDef("x", ("x",), data=x, dtype="float64"),
            ArrayDef("y", ("y",), data=y, dtype="float64"),
            ArrayDef("tile_done", ("ty", "tx"), (1, 1), "uint8", fill=0),
            ArrayDef("parameter", ("parameter",), data=np.asarray(["a.weight", "a.bias"], dtype="T"), dtype="T"),
        ], {})
        store.group["loss"][...] = np.arange(15, dtype="float32").reshape(3, 5)
        w.finish()
    ds = xr.open_zarr(url, consolidated=False)
    assert ds["loss"].dims == ("y", "x") and ds["loss"].shape == (3, 5)
    assert np.array_equal(ds["x"].values, x) and np.array_equal(ds["y"].values, y)
    assert float(ds["loss"].sel(y=0.5, x=-1.0)) == 10.0  # row 2, column 0: orientation kept
    assert ds["loss"].attrs["long_name"] == "mean loss over the data" and ds["loss"].attrs["units"] == "1"
    assert ds["seconds"].attrs["units"] == "s"  # an ArrayDef's own units win
    assert ds["x"].attrs == {"long_name": "coordinate along the slice's first direction (multiples of it)", "units": "1"}
    assert ds["y"].attrs["long_name"].startswith("coordinate along the slice's second direction")
    assert ds["tile_done"].attrs["long_name"] == "1 where the tile's values are stored"
    assert ds["parameter"].attrs == {"long_name": "parameter"}  # strings: a name, no units
