"""Bad input, across every command: exit status 2, one line naming what to fix, no traceback,
no colour codes, and nothing created that looks like a result.

Each case (tests/bad_input_cases.py) builds its files in a fresh folder, runs the CLI in-process and
checks all of that. Scan-spec cases run through both `landscape run` and `landscape validate`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.scan.run import run_scan
from jobs.specs import ScanSpec

from .bad_input_cases import OTHER_CASES, SPEC_CASES, Ctx
from .bad_input_cases_hostile import HOSTILE_OTHER_CASES, HOSTILE_SPEC_CASES
from .conftest import scan_spec_dict
from .one_line import run_bad

pytestmark = pytest.mark.ray
SPEC_CASES = SPEC_CASES + HOSTILE_SPEC_CASES
OTHER_CASES = OTHER_CASES + HOSTILE_OTHER_CASES


@pytest.fixture(scope="module")
def results(ray_cluster, tiny_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    plane = folder / "plane.zarr"
    grid = {"x": {"min": -1, "max": 1, "num": 3}, "y": {"min": 0, "max": 1, "num": 2}}
    run_scan(ScanSpec.model_validate(scan_spec_dict(tiny_run, grid=grid)), out=str(plane), plot=False)
    line = folder / "line.zarr"
    d = scan_spec_dict(tiny_run, name="tiny-line", grid={"x": {"min": -1, "max": 1, "num": 3}})
    d["slice"] = {"kind": "random_line", "checkpoint": str(tiny_run / "epoch_003.pt")}
    run_scan(ScanSpec.model_validate(d), out=str(line), plot=False)
    return plane, line



def _zarr_groups(root: Path) -> set[Path]:
    return {p.parent for p in root.rglob("zarr.json")}


def _check(capsys, ctx: Ctx, argv: list[str], needles: list[str]) -> None:
    before = _zarr_groups(ctx.tmp) | _zarr_groups(ctx.plane.parent)
    run_bad(capsys, argv, *needles)
    assert (_zarr_groups(ctx.tmp) | _zarr_groups(ctx.plane.parent)) == before, "a Zarr group was created"


@pytest.fixture
def ctx(tmp_path, tiny_run, results, monkeypatch):
    for k in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)  # a relative default output would land here
    return Ctx(tmp_path, tiny_run, *results)



@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", [c[0] for c in SPEC_CASES])
def test_bad_scan_specs(case, command, ctx, capsys):
    make, needles = next((m, n) for i, m, n in SPEC_CASES if i == case)
    spec = ctx.spec(make(ctx))
    argv = ["run", spec, "--out", str(ctx.tmp / "out.zarr"), "--no-plot"] if command == "run" else ["validate", spec]
    _check(capsys, ctx, argv, needles)
    assert not (ctx.tmp / "out.zarr").exists() and not (ctx.tmp / "results").exists()


@pytest.mark.parametrize("case", [c[0] for c in OTHER_CASES])
def test_bad_input_to_every_command(case, ctx, capsys):
    argv, needles = next((a, n) for i, a, n in OTHER_CASES if i == case)
    _check(capsys, ctx, argv(ctx), needles)
    assert not any(p.name == "epoch_000.pt" for p in ctx.tmp.rglob("*.pt")), "a bad train spec wrote checkpoints"


def test_there_are_more_than_a_hundred_cases():
    assert 2 * len(SPEC_CASES) + len(OTHER_CASES) >= 100

