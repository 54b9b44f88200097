"""Bad input: one clear line naming the field or file, exit 2, no traceback, nothing written."""

import json
import subprocess
import sys

import pytest
import torch
import yaml

from jobs.cli import main

from .conftest import scan_spec_dict
from .one_line import run_bad as _run_bad


def _write(tmp_path, d, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d))
    return str(p)


def _bad_cases(tiny_run, tmp_path):
    base = scan_spec_dict(tiny_run)
    wrong_model = tmp_path / "wrong.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, wrong_model)
    cases = {
        "misspelled field": ({**base, "gird": base["grid"]}, ["gird", "unknown field"]),
        "unknown slice kind": ({**base, "slice": {**base["slice"], "kind": "random_plan"}}, ["slice", "random_plan"]),
        "non-positive points": ({**base, "grid": {**base["grid"], "x": {"min": 0, "max": 1, "num": 0}}}, ["grid.x.num"]),
        "reversed range": ({**base, "grid": {**base["grid"], "y": {"min": 1, "max": -1, "num": 5}}}, ["grid.y", "reversed"]),
        "empty range": ({**base, "grid": {**base["grid"], "y": {"min": 1, "max": 1, "num": 5}}}, ["grid.y", "empty range"]),
        "missing checkpoint": ({**base, "slice": {**base["slice"], "checkpoint": str(tmp_path / "nope.pt")}}, ["nope.pt", "does not exist"]),
        "checkpoint does not fit": ({**base, "slice": {**base["slice"], "checkpoint": str(wrong_model)}}, ["wrong.pt", "does not fit"]),
        "data does not fit": ({**base, "data": {"kind": "synthetic", "n": 20, "shape": [3, 5, 5], "classes": 10}}, ["does not fit the model"]),
        "missing y for a plane": ({**base, "grid": {"x": base["grid"]["x"]}}, ["grid.y is required"]),
    }
    return cases


@pytest.mark.parametrize("case", [
    "misspelled field", "unknown slice kind", "non-positive points", "reversed range", "empty range",
    "missing checkpoint", "checkpoint does not fit", "data does not fit", "missing y for a plane",
])
def test_bad_specs_are_one_line_exit_2_and_write_nothing(case, tiny_run, tmp_path, capsys):
    spec, needles = _bad_cases(tiny_run, tmp_path)[case]
    path = _write(tmp_path, spec)
    out = tmp_path / "out.zarr"
    _run_bad(capsys, ["run", path, "--out", str(out)], *needles)
    assert not out.exists()
    _run_bad(capsys, ["validate", path], *needles)


def test_missing_spec_file(capsys, tmp_path):
    _run_bad(capsys, ["run", str(tmp_path / "none.yaml")], "none.yaml", "does not exist")


def test_output_holding_a_different_scan_is_refused_unless_overwrite(ray_cluster, tiny_run, tmp_path, capsys):
    out = tmp_path / "out.zarr"
    a = _write(tmp_path, scan_spec_dict(tiny_run, grid={"x": {"min": -1, "max": 1, "num": 3}, "y": {"min": 0, "max": 1, "num": 2}}), "a.yaml")
    b = _write(tmp_path, scan_spec_dict(tiny_run, name="other", grid={"x": {"min": -1, "max": 1, "num": 4}, "y": {"min": 0, "max": 1, "num": 2}}), "b.yaml")
    assert main(["run", a, "--out", str(out), "--no-plot"]) == 0
    capsys.readouterr()
    _run_bad(capsys, ["run", b, "--out", str(out), "--no-plot"], "holds a different scan", "--overwrite")
    assert main(["run", b, "--out", str(out), "--no-plot", "--overwrite"]) == 0
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "f.txt").write_text("x")
    capsys.readouterr()
    _run_bad(capsys, ["run", b, "--out", str(tmp_path / "junk"), "--no-plot"], "not a landscape result")


def test_point_writes_loadable_weights_and_checks_dims(ray_cluster, tiny_run, tmp_path, capsys):
    out = tmp_path / "r.zarr"
    spec = _write(tmp_path, scan_spec_dict(tiny_run, grid={"x": {"min": -1, "max": 1, "num": 3}, "y": {"min": 0, "max": 1, "num": 2}}))
    assert main(["run", spec, "--out", str(out), "--no-plot"]) == 0
    w = tmp_path / "w.pt"
    assert main(["point", str(out), "--x", "0.5", "--y", "0.25", "-o", str(w)]) == 0
    from landscape.factories import ModelFactory

    model = ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})()
    model.load_state_dict(torch.load(w, weights_only=True))
    capsys.readouterr()
    _run_bad(capsys, ["point", str(out), "--x", "0.5", "-o", str(w)], "give both --x and --y")
    _run_bad(capsys, ["point", str(tmp_path / "missing.zarr"), "--x", "0", "-o", str(w)], "no result at")


def test_schema_and_cli_entry_point():
    r = subprocess.run([sys.executable, "-m", "jobs.cli", "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(r.stdout)
    assert "slice" in schema["properties"]
    r = subprocess.run([sys.executable, "-m", "jobs.cli", "run"], capture_output=True, text=True)
    assert r.returncode == 2 and "spec" in r.stderr


def test_a_reader_that_stops_early_gets_no_error_line():
    """`landscape schema | head`: the pipe closes under the writer (the schema is larger than a pipe's buffer);
    no "error: Broken pipe", no traceback, the shell's SIGPIPE status."""
    r = subprocess.run(f"set -o pipefail; {sys.executable} -m jobs.cli schema --kind scan | head -c 1 >/dev/null",
                       shell=True, capture_output=True, text=True, timeout=120, executable="/bin/bash")
    assert r.returncode == 141 and r.stderr == "", (r.returncode, r.stderr)


def test_actors_that_cannot_be_placed_fail_fast_saying_what_was_asked(ray_cluster, tiny_run, tmp_path, capsys):
    spec = _write(tmp_path, scan_spec_dict(tiny_run))
    out = tmp_path / "gpu.zarr"
    _run_bad(capsys, ["run", spec, "--out", str(out), "--gpus-per-actor", "1"], "GPU 1", "the cluster has", "GPU 0", started=True)
    assert not out.exists()


def test_a_users_own_model_and_data_by_import_path(ray_cluster, tmp_path):
    import numpy as np
    import zarr

    from tests.user_factories import make_data, make_model

    from .independent import reference_loss

    torch.manual_seed(3)
    ckpt = tmp_path / "user.pt"
    torch.save(make_model(hidden=6).state_dict(), ckpt)
    d = {
        "name": "user",
        "model": {"kind": "import", "factory": "tests.user_factories:make_model", "options": {"hidden": 6}},
        "data": {"kind": "import", "factory": "tests.user_factories:make_data", "kwargs": {"n": 30}},
        "slice": {"kind": "random_line", "checkpoint": str(ckpt), "seed": 1},
        "grid": {"x": {"min": -1, "max": 1, "num": 5}},
        "tile": 2,
    }
    out = tmp_path / "user.zarr"
    assert main(["run", _write(tmp_path, d), "--out", str(out), "--no-plot"]) == 0
    loss = zarr.open_group(str(out), mode="r")["loss"][...]
    x, y = make_data(30)
    model = make_model(hidden=6)
    want, _ = reference_loss(model, torch.load(ckpt, weights_only=True), x, y)
    assert loss[2] == pytest.approx(want, rel=1e-5)  # x = 0 is the checkpoint
    assert np.isfinite(loss).all()
