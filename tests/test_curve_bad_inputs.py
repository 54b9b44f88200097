"""Every bad input of mode connectivity's commands (train-curve, curve scans, animate, submit): one line, exit 2,
nothing written that looks finished, and `validate` saying the same."""

from __future__ import annotations

import pytest
import torch

from landscape.checkpoints import save_curve

from .conftest import CURVE_DATA, CURVE_MODEL, curve_spec_dict
from .one_line import run_bad
from .test_curve_jobs import animate_dict, scan_dict, write


@pytest.fixture
def bad_inputs(digits_minima, digits_curve, tiny_run, tmp_path):
    """case -> (argv, what the one line must say, the output that must not appear)."""
    w1, w2 = digits_minima
    curve = digits_curve / "epoch_005.pt"
    changed = tmp_path / "changed" / w1.name
    changed.parent.mkdir()
    state = torch.load(w1, weights_only=True)
    state["net.0.bias"] += 1e-3
    torch.save(state, changed)
    moved = tmp_path / "moved.pt"  # a curve whose endpoints are no longer where it recorded them
    record = torch.load(curve, weights_only=True)
    save_curve(moved, {**{k: v for k, v in record.items() if k != "landscape_curve"},
                       "endpoints": [{**e, "path": str(tmp_path / "gone" / f"w{i}.pt")} for i, e in enumerate(record["endpoints"])]})
    empty = tmp_path / "empty-run"
    empty.mkdir()
    theta = record["theta"]
    bent = {k: v + 0.1 for k, v in theta.items()}
    two_bends = tmp_path / "two-bends.pt"  # a curve of two bends (format 2)
    save_curve(two_bends, {**{k: v for k, v in record.items() if k not in ("landscape_curve", "theta")},
                           "theta": [theta, bent], "trained_endpoints": [None, None]})
    moving = tmp_path / "moving-start"  # a curve run that trained its start: each epoch another w1
    for e in (1, 2):
        save_curve(moving / f"epoch_{e:03d}.pt", {**{k: v for k, v in record.items() if k not in ("landscape_curve", "theta")},
                                                  "epoch": e, "theta": [theta], "trained_endpoints": [
                                                      {k: v + 0.01 * e for k, v in state.items()}, None]})
    out = tmp_path / "out"
    spec = lambda d, name: write(tmp_path, d, name)  # noqa: E731
    scan = lambda d, name: (["run", spec(d, name), "--out", str(out)], out)  # noqa: E731
    train = lambda d, name: (["train-curve", spec(curve_spec_dict(**d), name), "--out", str(out)], out)  # noqa: E731
    anim = lambda run, name: (["animate", spec({**animate_dict(run), "model": CURVE_MODEL, "data": CURVE_DATA}, name),  # noqa: E731
                               "--out", str(out)], out)
    return {
        "endpoints of different architectures": (
            *train({"minima": (w1, tiny_run / "epoch_003.pt")}, "arch.yaml"), ["epoch_003.pt", "does not fit the model"]),
        "identical endpoints": (*train({"minima": (w1, w1)}, "same.yaml"), ["endpoints", "same weights"]),
        "unknown curve kind": (*train({"minima": digits_minima, "curve": {"kind": "spline"}}, "kind.yaml"), ["curve.kind", "bezier"]),
        "a curve checkpoint as an endpoint": (*train({"minima": (curve, w2)}, "ep.yaml"), ["epoch_005.pt", "is a curve checkpoint"]),
        "a curve checkpoint where a model checkpoint is expected": (
            *scan({**scan_dict(curve), "slice": {"kind": "line_between", "checkpoints": [str(curve), str(w2)]}}, "lb.yaml"),
            ["epoch_005.pt", "is a curve checkpoint", "slice.curve"]),
        "a model checkpoint where a curve checkpoint is expected": (
            *scan(scan_dict(w1), "model.yaml"), ["epoch_008.pt", "is a model checkpoint (a state_dict), not a curve checkpoint"]),
        "endpoints that changed since the curve was trained": (
            *scan({**scan_dict(curve), "slice": {"kind": "curve", "curve": str(curve), "endpoints": [str(changed), str(w2)]}},
                  "changed.yaml"), ["endpoint w1", "no longer matches", "sha256"]),
        "endpoints no longer where the curve recorded them": (
            *scan(scan_dict(moved), "moved.yaml"), ["endpoint w1", "does not exist", "slice.endpoints"]),
        "t outside [0, 1]": (*scan({**scan_dict(curve), "grid": {"x": {"min": -0.2, "max": 1.0, "num": 5}}}, "t.yaml"),
                             ["grid.x", "t in [0, 1]"]),
        "animate of a training run (model checkpoints)": (*anim(tiny_run, "a1.yaml"), ["holds no curve checkpoints", "model checkpoints"]),
        "animate of an empty folder": (*anim(empty, "a2.yaml"), ["holds no curve checkpoints"]),
        "animate of missing epochs": (
            ["animate", spec({**animate_dict(digits_curve), "model": CURVE_MODEL, "data": CURVE_DATA, "frames": [2, 9]}, "a3.yaml"),
             "--out", str(out)], out, ["frames", "[9]"]),
        "animate of another slice kind": (
            ["animate", spec({**animate_dict(digits_curve), "slice": {"kind": "plane_through",
                                                                   "checkpoints": [str(w1), str(w2), str(w1)]}}, "a4.yaml"), "--out", str(out)], out, ["slice.kind", "curve_plane"]),
        "animate with a preview": (
            ["animate", spec({**animate_dict(digits_curve), "model": CURVE_MODEL, "data": CURVE_DATA, "preview": 2}, "a6.yaml"),
             "--out", str(out)], out, ["preview", "remove preview"]),
        "num_bends 0": (*train({"minima": digits_minima, "curve": {"kind": "bezier", "num_bends": 0}}, "nb0.yaml"),
                        ["curve.num_bends", "greater than or equal to 1"]),
        "num_bends negative": (*train({"minima": digits_minima, "curve": {"kind": "polychain", "num_bends": -2}}, "nb1.yaml"),
                               ["curve.num_bends", "greater than or equal to 1"]),
        "num_bends huge": (*train({"minima": digits_minima, "curve": {"kind": "bezier", "num_bends": 10**9}}, "nb2.yaml"),
                           ["curve.num_bends", "less than or equal to 64"]),
        "num_bends not an integer": (*train({"minima": digits_minima, "curve": {"kind": "bezier", "num_bends": 1.5}}, "nb3.yaml"),
                                     ["curve.num_bends", "integer"]),
        "num_bends as text": (*train({"minima": digits_minima, "curve": {"kind": "bezier", "num_bends": "2"}}, "nb4.yaml"),
                              ["curve.num_bends", "integer"]),
        "fix_start not a boolean": (*train({"minima": digits_minima, "curve": {"kind": "bezier", "fix_start": "no"}}, "fx1.yaml"),
                                    ["curve.fix_start", "boolean"]),
        "fix_end not a boolean": (*train({"minima": digits_minima, "curve": {"kind": "bezier", "fix_end": 0}}, "fx2.yaml"),
                                  ["curve.fix_end", "boolean"]),
        "curve_plane of a two-bend curve": (*scan(scan_dict(two_bends, "curve_plane"), "cp2.yaml"),
                                            ["curve_plane", "one bend", "has 2 (num_bends)", "slice kind curve"]),
        "animate of a curve run that trained its start": (
            ["animate", spec({**animate_dict(moving), "model": CURVE_MODEL, "data": CURVE_DATA}, "a7.yaml"), "--out", str(out)],
            out, ["fix_start", "its own origin"]),
        "submit of an animation": (
            ["submit", spec({**animate_dict(digits_curve), "model": CURVE_MODEL, "data": CURVE_DATA}, "a5.yaml"),
             "--address", "http://127.0.0.1:9", "--out", str(out)], out, ["submit` runs scans and curve training"]),
    }


CASES = [
    "endpoints of different architectures", "identical endpoints", "unknown curve kind", "a curve checkpoint as an endpoint",
    "a curve checkpoint where a model checkpoint is expected", "a model checkpoint where a curve checkpoint is expected",
    "endpoints that changed since the curve was trained", "endpoints no longer where the curve recorded them",
    "t outside [0, 1]", "animate of a training run (model checkpoints)",
    "animate of an empty folder", "animate of missing epochs", "animate of another slice kind", "animate with a preview",
    "submit of an animation", "num_bends 0", "num_bends negative", "num_bends huge", "num_bends not an integer",
    "num_bends as text", "fix_start not a boolean", "fix_end not a boolean", "curve_plane of a two-bend curve",
    "animate of a curve run that trained its start",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, bad_inputs, capsys):
    argv, out, needles = bad_inputs[case]
    run_bad(capsys, argv, *needles)
    assert not out.exists()
    if argv[0] in ("run", "train-curve", "animate"):
        run_bad(capsys, ["validate", argv[1]], *needles)
