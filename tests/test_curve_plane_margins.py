"""curve_plane grids as Garipov et al.'s plane.py: margins relative to |w2 - w1| and the bend's offset."""

from __future__ import annotations

import pytest

from jobs.scan.problem import build_problem
from jobs.specs import ScanSpec

from .conftest import CURVE_DATA, CURVE_MODEL


def spec_dict(curve, **grid):
    return {"name": "plane-fit", "model": CURVE_MODEL, "data": CURVE_DATA,
            "slice": {"kind": "curve_plane", "curve": str(curve)},
            "grid": {"x": {"num": 7}, "y": {"num": 5}, "fit": "curve", **grid}, "tile": [4, 3]}


def test_fit_curve_spans_the_three_points_with_relative_margins(digits_curve):
    built = build_problem(ScanSpec.model_validate(spec_dict(digits_curve / "epoch_005.pt", margin=0.3)))
    pts = built.problem.slice.info["curve"]["points"]  # w1 (0, 0), theta, w2 (|w2 - w1|, 0)
    dx, dy = pts[2][0], pts[1][1]
    g = built.grid
    assert (g.x.min, g.x.max, g.x.num) == pytest.approx((-0.3 * dx, 1.3 * dx, 7))
    assert (g.y.min, g.y.max, g.y.num) == pytest.approx((-0.3 * dy, 1.3 * dy, 5))
    assert built.meta["grid_fit"]["fit"] == "curve" and built.meta["grid_fit"]["dx"] == pytest.approx(dx)
    default = build_problem(ScanSpec.model_validate(spec_dict(digits_curve / "epoch_005.pt"))).grid
    assert default.x.min == pytest.approx(-0.2 * dx)  # plane.py's default margin


@pytest.mark.parametrize("grid, message", [
    ({"fit": "curve", "x": {"min": 0, "max": 1, "num": 3}, "y": {"num": 3}}, "remove x.min"),
])
def test_fit_curve_refuses_explicit_ranges_and_other_slices(digits_curve, grid, message):
    d = spec_dict(digits_curve / "epoch_005.pt")
    d["grid"] = grid
    with pytest.raises(ValueError, match=message):
        ScanSpec.model_validate(d)
    d = spec_dict(digits_curve / "epoch_005.pt")
    d["slice"] = {"kind": "curve", "curve": str(digits_curve / "epoch_005.pt")}
    d["grid"] = {"x": {"num": 5}, "fit": "curve"}
    with pytest.raises(ValueError, match="applies only to curve_plane"):
        ScanSpec.model_validate(d)
