"""Refinement order: after the coarse preview pass, the tiles where the surface changes most go first; same values."""

import numpy as np
import pytest
import zarr

from cluster.preview import empty_pairs, preview_items, strides_of
from cluster.refine import RefinedItems, change_map


def test_change_map_takes_the_largest_neighbour_difference_and_marks_non_finite_ones():
    v = np.array([[1.0, 1.0, 10.0], [1.0, np.nan, 10.0]])
    c = change_map(v, log=True)  # log10: the cliff 1 -> 10 is a change of 1
    assert c[0, 0] == 0.0 and c[0, 2] == 1.0
    assert np.isinf(c[0, 1]) and np.isinf(c[1, 0]) and np.isinf(c[1, 2])  # beside the NaN


def test_the_tiles_at_the_cliff_come_first_then_every_remaining_pair_once():
    grid, tile, strides = (12, 20), (4, 4), strides_of(4)  # 3 x 5 tiles; coarse points every 4th row and column
    yy, xx = np.mgrid[0:12, 0:20]
    values = np.where(xx >= 16, 100.0, 1.0 + 0.001 * yy)  # a cliff between coarse columns 12 and 16
    done = empty_pairs(grid, tile, strides)
    items = RefinedItems(grid, tile, strides, done.copy(), lambda: values, fraction=0.4, log=True)
    got = []
    coarse = [next(items) for _ in range(int((~done[0]).sum()))]
    assert all(it.level == 0 for it in coarse)
    assert next(items, None) is None  # the coarse pass is not stored yet: nothing to order by
    for it in coarse:
        items.stored(it)
    got = list(items)
    # 6 of 15 tiles; those whose coarse points within one stride (4) span the cliff: tile columns 2-4
    assert len(items.first_tiles) == 6 and all(c in (2, 3, 4) for _, c in items.first_tiles)
    first = {it.tile.index for it in got[: sum(1 for it in got if it.tile.index in set(items.first_tiles))]}
    assert first == set(items.first_tiles)
    every = [(it.level, it.tile.index) for it in preview_items(grid, tile, strides, done) if it.level > 0]
    assert sorted((it.level, it.tile.index) for it in got) == sorted(every)  # each pending pair once


@pytest.mark.ray
def test_a_refined_scan_ends_with_the_values_of_a_plain_scan(ray_cluster, tiny_run, tmp_path):
    from jobs.scan.run import run_scan
    from jobs.specs import ScanSpec

    from .conftest import scan_spec_dict

    plain, refined = tmp_path / "plain.zarr", tmp_path / "refined.zarr"
    run_scan(ScanSpec.model_validate(scan_spec_dict(tiny_run, tile=[2, 3])), out=str(plain), plot=False)
    spec = ScanSpec.model_validate(scan_spec_dict(tiny_run, tile=[2, 3], preview=2, refine={"metric": "loss", "fraction": 0.3}))
    run_scan(spec, out=str(refined), plot=False)
    a, b = zarr.open_group(str(plain), mode="r"), zarr.open_group(str(refined), mode="r")
    for name in ("loss", "loss_se", "accuracy", "accuracy_se"):
        assert np.array_equal(a[name][...], b[name][...]), name
    assert b["tile_done"][...].all()


def test_refine_changes_the_order_only_so_a_scan_resumes_with_or_without_it(tiny_run):
    from jobs.specs import ScanSpec

    from .conftest import scan_spec_dict

    plain = ScanSpec.model_validate(scan_spec_dict(tiny_run, preview=2))
    refined = ScanSpec.model_validate(scan_spec_dict(tiny_run, preview=2, refine={"metric": "loss_se", "fraction": 0.5}))
    assert plain.identity() == refined.identity()
    assert plain.identity() != ScanSpec.model_validate(scan_spec_dict(tiny_run, preview=4)).identity()
