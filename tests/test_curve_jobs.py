"""Mode connectivity as users run it: train-curve (in-process and on Ray Train), curve scans, animate, submit bundles,
and the checks around them (their bad input: tests/test_curve_bad_inputs.py)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
import zarr

from cluster.store import ResultStore
from jobs.cli import main
from landscape.checkpoints import file_sha256, save_curve

from .conftest import CURVE_DATA, CURVE_MODEL, REPO, curve_spec_dict
from .independent import reference_loss, state_at
from .procs import alive, kill_driver
from .slow_factories import line_checkpoints
from .test_faults import subprocess_env, tiles_done, wait_for


def write(folder: Path, d: dict, name: str) -> str:
    p = folder / name
    p.write_text(yaml.safe_dump(d))
    return str(p)




def scan_dict(curve: Path, kind: str = "curve", **overrides) -> dict:
    d = {"name": f"digits-{kind}", "model": CURVE_MODEL, "data": CURVE_DATA, "slice": {"kind": kind, "curve": str(curve)},
         "grid": {"x": {"min": 0.0, "max": 1.0, "num": 11}}, "tile": 4}
    if kind == "curve_plane":
        d["grid"] = {"x": {"min": -2.0, "max": 19.0, "num": 9}, "y": {"min": -1.5, "max": 4.0, "num": 6}}
        d["tile"] = [4, 3]
    d.update(overrides)
    return d


# -- train-curve ------------------------------------------------------------------------------------


def test_train_curve_writes_a_curve_checkpoint_per_epoch_and_reports_the_midpoint(digits_minima, tmp_path, capsys):
    spec = write(tmp_path, curve_spec_dict(digits_minima, epochs=2, curve={"kind": "polychain"}), "curve.yaml")
    out = tmp_path / "run"
    assert main(["train-curve", spec, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("loss along the curve") == 2 and err.count("| t=0.5: loss") == 2, err
    assert sorted(p.name for p in out.iterdir()) == ["curve.json", "epoch_001.pt", "epoch_002.pt"]
    record = torch.load(out / "epoch_002.pt", weights_only=True)
    assert record["landscape_curve"] == 1 and record["kind"] == "polychain" and record["epoch"] == 2
    assert [e["sha256"] for e in record["endpoints"]] == [file_sha256(p) for p in digits_minima]
    history = json.loads((out / "curve.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2] and all(np.isfinite(h["loss_t05"]) for h in history)
    assert main(["train-curve", spec, "--out", str(out)]) == 0  # finished: nothing to do
    assert "nothing to do" in capsys.readouterr().out


# -- scans of curves --------------------------------------------------------------------------------


@pytest.mark.ray
def test_curve_scan_holds_curve_line_and_ensembles_and_plots_them(ray_cluster, digits_curve, tmp_path, capsys):
    import xarray as xr

    out = tmp_path / "curve.zarr"
    spec = write(tmp_path, scan_dict(digits_curve / "epoch_005.pt", metrics=["ensemble"]), "scan.yaml")
    assert main(["run", spec, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    ds = xr.open_zarr(out)
    names = {"loss", "accuracy", "ensemble_accuracy", "ensemble_nll"}
    assert names | {f"line_{n}" for n in names} <= set(ds.data_vars)
    assert ds["line_loss"].dims == ("x",) and "straight line" in ds["line_loss"].attrs["description"]
    meta = ResultStore.open(str(out)).meta
    assert meta["batchnorm"].startswith("recompute") and meta["spec"]["batchnorm"] is None  # the curve default
    assert meta["coef_map"] == {"kind": "bezier"} and meta["companions"] == {"line": {"kind": "chord"}}
    assert [c["label"] for c in meta["checkpoints"]] == ["w1", "w2"]
    loss, line = ds["loss"].values, ds["line_loss"].values
    assert loss[0] == line[0] and loss[-1] == line[-1] and loss.max() < line.max()
    plots = {Path(ln.split()[-1]).name for ln in printed.splitlines() if ln.startswith("plot: ")}
    assert plots == {"curve.png", "ensemble.png", "loss_relative_se.png"}, plots  # the paired figures replace per-array lines
    # `landscape point` rebuilds phi(t) bit for bit.
    from landscape.curves import phi
    from landscape.params import StateLayout

    w = tmp_path / "p.pt"
    assert main(["point", str(out), "--x", "0.3", "-o", str(w)]) == 0
    layout = StateLayout.from_json(meta["layout"])
    g = zarr.open_group(str(out), mode="r")
    d = torch.from_numpy(g["directions"][...])
    assert torch.equal(layout.flatten(torch.load(w, weights_only=True)), phi("bezier", 0.3, d[0], d[1], d[2]))


@pytest.mark.ray
def test_curve_plane_scan_draws_the_curve_on_its_maps(ray_cluster, digits_curve, tmp_path, capsys):
    import matplotlib.pyplot as plt

    from jobs.plot import figures, load
    from landscape.curves import curve_xy

    out = tmp_path / "plane.zarr"
    spec = write(tmp_path, scan_dict(digits_curve / "epoch_005.pt", "curve_plane"), "plane.yaml")
    assert main(["run", spec, "--out", str(out)]) == 0
    assert "contour.png" in capsys.readouterr().out
    ls = load(str(out))
    assert ls.loss.shape == (6, 9) and ls.meta["slice_kind"] == "curve_plane"
    pts = ls.meta["slice_info"]["curve"]["points"]
    assert [[m["x"], m["y"]] for m in ls.meta["checkpoints"]] == [pts[0], pts[2], pts[1]]
    figs = figures(str(out))
    try:
        for name in ("contour", "heatmap"):
            drawn = [ln for ln in figs[name].axes[0].get_lines() if ln.get_label() == "bezier curve"]
            assert len(drawn) == 1, name
            np.testing.assert_allclose(np.c_[drawn[0].get_data()], curve_xy("bezier", pts))
    finally:
        for f in figs.values():
            plt.close(f)


# -- animate ----------------------------------------------------------------------------------------


def _frames(folder: Path) -> Path:
    """Three hand-made curve checkpoints of the slow fault-test model between two endpoints (no training needed)."""
    a, b = line_checkpoints(folder)
    wa, wb = (torch.load(p, weights_only=True) for p in (a, b))
    ends = [{"path": str(p), "sha256": file_sha256(p)} for p in (a, b)]
    run = folder / "curve"
    g = torch.Generator().manual_seed(0)
    for epoch in (1, 2, 3):
        theta = {k: (wa[k] + wb[k]) / 2 + 0.3 * epoch * torch.randn(wa[k].shape, generator=g) for k in wa}
        save_curve(run / f"epoch_{epoch:03d}.pt", {"kind": "bezier", "theta": theta, "endpoints": ends, "epoch": epoch})
    return run


def animate_dict(run: Path, name: str = "anim", **model) -> dict:
    return {
        "name": name,
        "model": {"kind": "import", "factory": "tests.slow_factories:make_model", "options": {"hidden": 6, **model}},
        "data": {"kind": "import", "factory": "tests.user_factories:make_data", "kwargs": {"n": 30}},
        "slice": {"kind": "curve_plane", "curve": str(run)},
        "frames": "all",
        "grid": {"x": {"min": -0.5, "max": 3.0, "num": 7}, "y": {"min": -0.2, "max": 1.5, "num": 5}},
        "tile": [2, 3],
        "video": {"format": "mp4", "fps": 2},
    }


@pytest.mark.ray
def test_animate_one_job_three_frames_resumes_after_a_killed_driver(ray_cluster, tmp_path, capsys, monkeypatch):
    from matplotlib import animation
    from PIL import Image

    run = _frames(tmp_path)
    # The undisturbed animation (no delay: it changes no number); ffmpeg hidden, so mp4 falls back to GIF with a note.
    monkeypatch.setattr(animation.writers, "is_available", lambda name: False)
    base = tmp_path / "base.zarr"
    assert main(["animate", write(tmp_path, animate_dict(run), "base.yaml"), "--out", str(base)]) == 0
    err, printed = capsys.readouterr()[::-1]
    assert "ffmpeg, which is not on PATH: wrote an animated GIF instead" in err
    gif = Path(next(ln for ln in printed.splitlines() if ln.startswith("video: ")).split()[-1])
    assert gif.suffix == ".gif" and Image.open(gif).n_frames == 3
    g = zarr.open_group(str(base), mode="r")
    assert g["loss"].metadata.dimension_names == ("frame", "y", "x") and g["loss"].shape == (3, 5, 7)
    assert g["tile_done"].shape == (3, 3, 3) and g["tile_done"][...].all()
    assert list(g["frame"][...]) == [1, 2, 3] and g["curve_points"].shape == (3, 3, 2)
    meta = ResultStore.open(str(base)).meta  # provenance: every frame's curve checkpoint and the endpoints, hashed
    read = {e["role"]: [] for e in meta["provenance"]["checkpoints"]}
    for e in meta["provenance"]["checkpoints"]:
        read[e["role"]].append((e["path"], e["sha256"]))
    sha = lambda p: hashlib.sha256(Path(p).read_bytes()).hexdigest()  # noqa: E731
    assert read["frame"] == [(r["curve"], sha(r["curve"])) for r in meta["frames"]]
    assert read["endpoint"] == [(e["path"], sha(e["path"])) for e in meta["slice_info"]["endpoints"]] and len(read["endpoint"]) == 2
    dirs = g["directions"][...]  # (frame, 2, P): each frame its own basis
    assert dirs.shape[:2] == (3, 2) and not np.array_equal(dirs[0], dirs[2])
    # One frame's point against a direct evaluation of w1 + x e1 + y e2 of that frame.
    from tests.slow_factories import make_model
    from tests.user_factories import make_data

    from landscape.params import StateLayout

    model = make_model(hidden=6)
    layout = StateLayout.from_json(ResultStore.open(str(base)).meta["layout"])
    origin = layout.unflatten(torch.from_numpy(g["origin"][...]))
    frame_dirs = [layout.unflatten(torch.from_numpy(d)) for d in dirs[2]]
    x, y = make_data(30)
    xs, ys = g["x"][...], g["y"][...]
    want = reference_loss(model, state_at(model, origin, frame_dirs, (xs[5], ys[3])), x, y)[0]
    assert g["loss"][2, 3, 5] == pytest.approx(want, rel=1e-5)

    # The same animation with slow grid points, its driver SIGKILLed mid-run, then resumed.
    out = tmp_path / "killed.zarr"
    spec = write(tmp_path, animate_dict(run, "slow", delay=0.05), "slow.yaml")
    with open(tmp_path / "driver.log", "wb") as log:
        p = subprocess.Popen([sys.executable, "-m", "jobs.cli", "animate", spec, "--out", str(out), "--no-video"], cwd=REPO,
                             env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: tiles_done(out) >= 2, 120, "two stored tiles", p)
    finally:
        leftovers = kill_driver(p)
    assert not any(alive(pid) for pid in leftovers)
    n_done = int(ResultStore.open(str(out)).done_mask().sum())
    assert 2 <= n_done < 27, n_done
    capsys.readouterr()
    assert main(["animate", spec, "--out", str(out), "--no-video"]) == 0
    assert f"resuming {out}: {27 - n_done} of 27 tiles left to evaluate" in capsys.readouterr().err
    got = zarr.open_group(str(out), mode="r")
    assert ResultStore.open(str(out)).meta["status"] == "complete"
    for name in ("loss", "accuracy", "directions", "curve_points"):
        assert np.array_equal(got[name][...], g[name][...]), name  # bit-identical to the undisturbed run

    # With ffmpeg on PATH (the system's, or the one imageio-ffmpeg bundles), the video is an MP4 of three frames.
    monkeypatch.undo()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        import imageio_ffmpeg

        (tmp_path / "bin").mkdir()
        ffmpeg = str(tmp_path / "bin" / "ffmpeg")
        os.symlink(imageio_ffmpeg.get_ffmpeg_exe(), ffmpeg)
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    from jobs.plot.video import write_video

    mp4, note = write_video(str(base), tmp_path / "video", "auto", 2, 60)
    assert mp4.suffix == ".mp4" and note is None
    decoded = subprocess.run([ffmpeg, "-i", str(mp4), "-f", "null", "-"], capture_output=True, text=True).stderr
    assert re.search(r"frame=\s*3\b", decoded), decoded[-500:]


# -- submit: what a curve job carries ---------------------------------------------------------------


def test_submit_bundles_ship_the_endpoints_and_run_train_curve(digits_minima, digits_curve, tmp_path):
    from jobs.service.bundle import build_bundle, entrypoint
    from jobs.specs import ScanSpec, load_any_spec

    spec_path = Path(write(tmp_path, curve_spec_dict(digits_minima), "curve.yaml"))
    bundle = build_bundle(spec_path, load_any_spec(spec_path), tmp_path / "b1", remote_checkpoints=False)
    staged = yaml.safe_load((bundle.root / bundle.spec_file).read_text())["endpoints"]
    assert [(bundle.root / s).read_bytes() for s in staged] == [p.read_bytes() for p in digits_minima]
    args = argparse.Namespace(kind="curve", workers=2, gpus_per_worker=None, overwrite=False)
    assert entrypoint(bundle.spec_file, "/shared/curve", args) == (
        "python -m jobs.service.bootstrap train-curve spec.yaml --out /shared/curve --address auto --workers 2"
    )
    args = argparse.Namespace(kind="curve", workers=None, gpus_per_worker=0.5, overwrite=True)  # workers: the spec's
    assert entrypoint(bundle.spec_file, "/shared/curve", args).endswith("--address auto --gpus-per-worker 0.5 --overwrite")
    # A curve scan carries its curve checkpoint and the endpoints that checkpoint names.
    scan_path = Path(write(tmp_path, scan_dict(digits_curve / "epoch_005.pt"), "scan.yaml"))
    bundle = build_bundle(scan_path, load_any_spec(scan_path), tmp_path / "b2", remote_checkpoints=False)
    staged = ScanSpec.model_validate(yaml.safe_load((bundle.root / bundle.spec_file).read_text())).slice
    assert (bundle.root / staged.curve).read_bytes() == (digits_curve / "epoch_005.pt").read_bytes()
    assert [file_sha256(bundle.root / p) for p in staged.endpoints] == [file_sha256(p) for p in digits_minima]


def test_recompute_on_a_model_without_batchnorm_is_a_note(digits_curve, tmp_path, capsys):
    spec = write(tmp_path, scan_dict(digits_curve / "epoch_005.pt", batchnorm="recompute"), "bn.yaml")
    assert main(["validate", spec]) == 0
    assert "note: batchnorm: recompute has nothing to do: the model has no BatchNorm layer" in capsys.readouterr().out
    spec = write(tmp_path, scan_dict(digits_curve / "epoch_005.pt"), "default.yaml")  # the curve default: no note
    assert main(["validate", spec]) == 0
    assert "note:" not in capsys.readouterr().out


def test_checkpoint_kinds_are_told_apart(digits_minima, digits_curve):
    from landscape.checkpoints import load_state, read_curve_checkpoint
    from landscape.errors import CheckpointError

    with pytest.raises(CheckpointError, match="is a curve checkpoint .*slice.curve"):
        load_state(digits_curve / "epoch_001.pt", torch.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="is a model checkpoint"):
        read_curve_checkpoint(digits_minima[0])
    copied = shutil.copy(digits_curve / "epoch_001.pt", digits_curve.parent / "moved.pt")
    assert read_curve_checkpoint(copied)["epoch"] == 1


def test_blank_points_of_line_between_in_eval_mode_say_why():
    from jobs.plot.data import Landscape
    from jobs.plot.style import diverged_label

    x = np.linspace(-0.5, 1.5, 5)
    ones = np.ma.masked_invalid(np.ones(5))
    meta = {"slice_kind": "line_between", "batchnorm": "eval: eval mode with the running statistics the slice carries",
            "layout": [["bn.running_var", [3], False]]}
    past_ends = Landscape(ones, ones, x, None, meta, np.zeros(5, bool), np.array([True, False, False, False, True]))
    assert diverged_label(past_ends).startswith("blank (NaN): past an endpoint the interpolated BatchNorm variances go below zero")
    inside = Landscape(ones, ones, x, None, meta, np.zeros(5, bool), np.array([False, False, True, False, False]))
    assert "try batchnorm: recompute" in diverged_label(inside)
    recomputed = Landscape(ones, ones, x, None, {**meta, "batchnorm": "recompute: ..."}, np.zeros(5, bool), past_ends.diverged)
    assert diverged_label(recomputed) == "diverged: NaN/inf loss"
