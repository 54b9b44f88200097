"""Bad trajectory input: one line naming the field or file, exit 2, nothing written (no Ray is started)."""

import pytest
import torch
import yaml

from landscape.factories import ModelFactory

from .conftest import TINY_DATA, TINY_MODEL
from .test_cli import _run_bad


def _spec(slice_, grid=None):
    return {
        "name": "bad-traj", "model": TINY_MODEL, "data": TINY_DATA, "slice": slice_,
        "grid": grid or {"x": {"num": 5}, "y": {"num": 4}, "fit": "path"},
    }


def _files(tiny_run, tmp_path):
    """Checkpoints for the cases: copies of one, a line through two, another model's, a NaN one, a text file."""
    model = ModelFactory("mlp", (1, 8, 8), 10, {"widths": [12]})()
    last = torch.load(tiny_run / "epoch_003.pt", weights_only=True)
    first = torch.load(tiny_run / "epoch_000.pt", weights_only=True)
    for i in range(3):
        torch.save(last, tmp_path / f"same_{i}.pt")
    for i, t in enumerate((0.0, 0.5, 1.0)):
        torch.save({k: first[k] + t * (last[k] - first[k]) for k in last}, tmp_path / f"line_{i}.pt")
    other = ModelFactory("mlp", (1, 8, 8), 10, {"widths": [7]})()
    torch.save(other.state_dict(), tmp_path / "other_model.pt")
    nan = {k: v.clone() for k, v in model.state_dict().items()}
    next(iter(nan.values()))[0] = float("nan")
    torch.save(nan, tmp_path / "nan.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    return [str(tiny_run / f"epoch_{k:03d}.pt") for k in range(4)]


def _cases(tiny_run, tmp_path):
    run = _files(tiny_run, tmp_path)
    pca = {"kind": "trajectory_pca"}
    t = str(tmp_path)
    return {
        "glob matches nothing": (_spec({**pca, "checkpoints": f"{t}/nope_*.pt"}), ["slice.checkpoints", "matches no file"]),
        "glob matches one file": (_spec({**pca, "checkpoints": run[0]}), ["slice.checkpoints", "matches only 1 file", "epoch_000"]),
        "glob matches two for a plane": (_spec({**pca, "checkpoints": f"{tiny_run}/epoch_00[01].pt"}),
                                         ["matches only 2 files", "epoch_000.pt, ", "epoch_001.pt", "at least 3"]),
        "fewer than three for a plane": (_spec({**pca, "checkpoints": run[:2]}), ["slice.checkpoints", "at least 3", "got 2"]),
        "one checkpoint for a path": (_spec({"kind": "trajectory", "checkpoints": run[:1]}, {"x": {"num": 5}, "fit": "path"}),
                                      ["slice.checkpoints", "at least 2"]),
        "checkpoints of different models": (_spec({**pca, "checkpoints": [run[0], f"{t}/other_model.pt", run[3]]}),
                                             ["slice.checkpoints", "other_model.pt", "does not fit the model"]),
        "all checkpoints equal": (_spec({**pca, "checkpoints": f"{t}/same_*.pt"}), ["slice.checkpoints", "all 3 checkpoints are equal", "no variance"]),
        "checkpoints on one line": (_spec({**pca, "checkpoints": f"{t}/line_*.pt"}), ["slice.checkpoints", "one line", "kind: trajectory"]),
        "a NaN checkpoint": (_spec({**pca, "checkpoints": [run[0], f"{t}/nan.pt", run[3]]}), ["slice.checkpoints", "nan.pt", "NaN", "leave it out"]),
        "origin missing": (_spec({**pca, "checkpoints": run, "origin": f"{t}/gone.pt"}), ["slice.origin", "gone.pt", "does not exist"]),
        "origin not a checkpoint": (_spec({**pca, "checkpoints": run, "origin": f"{t}/notes.pt"}), ["slice.origin", "notes.pt", "text file"]),
        "fit with explicit min/max": (_spec({**pca, "checkpoints": run},
                                            {"x": {"min": -1, "max": 1, "num": 5}, "y": {"num": 4}, "fit": "path"}),
                                      ["grid", "fit: path", "remove x.min, x.max"]),
        "no range and no fit": (_spec({**pca, "checkpoints": run}, {"x": {"num": 5}, "y": {"num": 4}}),
                                ["grid", "x.min, x.max, y.min, y.max", "fit: path"]),
        "fit on a random plane": (_spec({"kind": "random_plane", "checkpoint": run[3]}),
                                  ["grid.fit: path applies only to trajectory slices", "random_plane"]),
        "margin without fit": (_spec({**pca, "checkpoints": run},
                                     {"x": {"min": -1, "max": 1, "num": 5}, "y": {"min": -1, "max": 1, "num": 4}, "margin": 0.1}),
                               ["margin is used only with fit: path"]),
    }


CASES = [
    "glob matches nothing", "glob matches one file", "glob matches two for a plane", "fewer than three for a plane",
    "one checkpoint for a path", "checkpoints of different models", "all checkpoints equal", "checkpoints on one line",
    "a NaN checkpoint", "origin missing", "origin not a checkpoint", "fit with explicit min/max", "no range and no fit",
    "fit on a random plane", "margin without fit",
]


def test_every_case_of_the_table_runs(tiny_run, tmp_path):
    assert list(_cases(tiny_run, tmp_path)) == CASES


@pytest.mark.parametrize("case", CASES)
def test_bad_trajectory_input_is_one_line_exit_2_and_writes_nothing(case, tiny_run, tmp_path, capsys):
    spec, needles = _cases(tiny_run, tmp_path)[case]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out.zarr"
    _run_bad(capsys, ["run", str(path), "--out", str(out)], *needles)
    assert not out.exists() and not (tmp_path / "out-plots").exists()
    _run_bad(capsys, ["validate", str(path)], *needles)  # validate finds the same
