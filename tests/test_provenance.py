"""Provenance in results (code, libraries, input files' SHA-256), and identities that only the numbers decide:
a submitted job's copy of a spec (which names uploaded checkpoints) has the identity of the spec as written."""

from __future__ import annotations

import hashlib
from pathlib import Path
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
import zarr

from jobs.cli import main

from .conftest import REPO, scan_spec_dict

SMALL_GRID = {"x": {"min": -1.0, "max": 0.5, "num": 3}, "y": {"min": -0.5, "max": 1.0, "num": 2}}


def _sha256(path) -> str:  # independent of landscape's file_sha256
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def scanned(ray_cluster, tiny_run, tmp_path_factory):
    """A small scan of a checkpoint of its own (a test changes it): (spec file, checkpoint, result)."""
    tmp = tmp_path_factory.mktemp("prov")
    ckpt = tmp / "ckpt" / "w.pt"
    ckpt.parent.mkdir()
    shutil.copy(tiny_run / "epoch_003.pt", ckpt)
    spec = tmp / "s.yaml"
    d = scan_spec_dict(tiny_run, name="prov", grid=SMALL_GRID, tile=[2, 2])
    d["slice"]["checkpoint"] = str(ckpt)
    spec.write_text(yaml.safe_dump(d))
    out = tmp / "r.zarr"
    assert main(["run", str(spec), "--out", str(out), "--no-plot", "--actors", "1"]) == 0
    return spec, ckpt, out


def _meta(out) -> dict:
    return dict(zarr.open_group(str(out), mode="r").attrs)["landscape"]


def test_a_scan_records_its_code_libraries_inputs_device_and_precision(scanned):
    import sklearn

    spec, ckpt, out = scanned
    p = _meta(out)["provenance"]
    assert p["checkpoints"] == [{"role": "slice.checkpoint", "path": str(ckpt), "sha256": _sha256(ckpt)}]
    assert p["data_files"] == []  # digits come with scikit-learn: its version says which
    libs = p["libraries"]
    assert libs["torch"] == torch.__version__ and libs["numpy"] == np.__version__
    assert libs["scikit-learn"] == sklearn.__version__ and libs["python"] == platform.python_version()
    assert ("transformers" in libs) == ("transformers" in sys.modules)  # only libraries this process used
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert p["landscape"]["version"] == "0.1.0"
    assert p["landscape"]["commit"] == (head.stdout.strip() if (REPO / ".git").exists() else None)
    assert (p["device"], p["precision"]) == ("cpu (actors)", "fp32")


def test_a_file_data_set_is_hashed_file_by_file(tmp_path):
    """The files the readers read: here an MNIST split's two idx files (and nothing else in the folder)."""
    import gzip

    from jobs.common.provenance import data_files
    from jobs.specs.datasets import MnistData

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(range(8))
    labels = bytes([0, 0, 8, 1, 0, 0, 0, 2, 3, 7])
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(labels)
    (raw / "train-labels-idx1-ubyte").write_bytes(labels)  # another split: not read
    got = data_files("data", MnistData(kind="mnist", root=tmp_path, split="test"))
    assert [(e["path"], e["sha256"]) for e in got] == [(str(raw / n), _sha256(raw / n)) for n in
                                                       ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte")]


def test_an_image_folder_and_a_tokenizer_folder_are_one_digest_each(tmp_path):
    """One entry per folder: SHA-256 over each file's relative path and SHA-256, in sorted order."""
    from PIL import Image

    from jobs.common.provenance import data_files
    from jobs.specs.datasets import ImageFolderData
    from jobs.specs.parts import TextData

    for i, c in enumerate(("b", "a")):
        (tmp_path / "img" / c).mkdir(parents=True)
        Image.new("RGB", (4, 4), (i * 90, 10, 20)).save(tmp_path / "img" / c / "x.png")
    (tmp_path / "img" / "a" / "notes.txt").write_text("not an image: not read")
    (entry,) = data_files("data", ImageFolderData(kind="image_folder", root=tmp_path / "img"))
    lines = "".join(f"{c}/x.png\0{_sha256(tmp_path / 'img' / c / 'x.png')}\n" for c in ("a", "b"))
    assert (entry["files"], entry["sha256"]) == (2, hashlib.sha256(lines.encode()).hexdigest())
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("{}")
    (tmp_path / "corpus.txt").write_text("hello")
    text, folder = data_files("data", TextData(kind="text", path=tmp_path / "corpus.txt", tokenizer=str(tok), block_size=2))
    assert (text["role"], text["sha256"]) == ("data.path", _sha256(tmp_path / "corpus.txt"))
    line = f"tokenizer.json\0{_sha256(tok / 'tokenizer.json')}\n"
    assert (folder["role"], folder["files"], folder["sha256"]) == ("data.tokenizer", 1, hashlib.sha256(line.encode()).hexdigest())


def test_a_submitted_job_shares_the_local_runs_identity_and_resumes_it(scanned, monkeypatch, capsys):
    """Why they differed: the job's copy of the spec names the uploaded checkpoint (checkpoints/<hash>/w.pt),
    and a scan's identity hashes its spec's fields. The bundle now records the identity of the spec as written."""
    from jobs.service.bundle import build_bundle
    from jobs.specs import load_spec, submitted_record

    spec_path, ckpt, out = scanned
    spec = load_spec(spec_path)
    bundle = build_bundle(spec_path, spec, spec_path.parent / "bundle", remote_checkpoints=False)
    monkeypatch.chdir(bundle.root)  # the job's working_dir
    staged = load_spec(bundle.spec_file)
    assert staged.slice.checkpoint != spec.slice.checkpoint
    assert staged.identity() == spec.identity() == _meta(out)["identity"]
    record = submitted_record(bundle.spec_file)
    kept = record.read_text()
    record.unlink()
    assert load_spec(bundle.spec_file).identity() != spec.identity()  # the cause, without the record
    record.write_text(kept)
    edited = bundle.root / "edited.yaml"  # a copy changed after submission is a new spec: the record no longer applies
    edited.write_text(yaml.safe_dump({**yaml.safe_load(Path(bundle.spec_file).read_text()), "name": "edited"}))
    submitted_record(edited).write_text(kept)
    assert load_spec(edited).identity() not in (spec.identity(), load_spec(bundle.spec_file).identity())
    capsys.readouterr()
    assert main(["run", bundle.spec_file, "--out", str(out), "--no-plot"]) == 0  # the entrypoint's command
    assert "already complete" in capsys.readouterr().err  # the local result, opened as its own


def test_status_shows_provenance_and_a_result_without_it_still_opens_and_resumes(scanned, capsys):
    from jobs.service.remote import progress_lines

    spec, _, out = scanned
    line = next(ln for ln in progress_lines(str(out)) if ln.startswith("provenance:"))
    assert f"torch {torch.__version__}" in line and "1 input file(s) hashed" in line and "fp32" in line
    old = out.with_name("old.zarr")
    shutil.copytree(out, old)
    g = zarr.open_group(str(old), mode="r+")
    attrs = dict(g.attrs)["landscape"]
    del attrs["provenance"]  # as results written before it was recorded
    g.attrs["landscape"] = attrs
    assert "provenance: not recorded (a result written before landscape recorded it)" in progress_lines(str(old))
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(old), "--no-plot"]) == 0  # the same identity: opened, not refused
    assert "already complete" in capsys.readouterr().err
    assert main(["plot", str(old), "--out", str(old.with_name("old-plots"))]) == 0
    assert main(["fetch", str(old), "-o", str(old.with_name("fetched.zarr"))]) == 0


def test_a_changed_checkpoint_is_refused_on_resume_in_one_line(scanned, capsys):
    """The stored numbers came from the old weights: going on would mix two models in one result."""
    from .one_line import assert_one_line

    spec, ckpt, out = scanned
    kept = ckpt.with_name("kept.pt")
    shutil.copy2(ckpt, kept)
    try:
        state = torch.load(ckpt, weights_only=True)
        torch.save({k: v + 1 if v.is_floating_point() else v for k, v in state.items()}, ckpt)
        capsys.readouterr()
        err = assert_one_line(main(["run", str(spec), "--out", str(out), "--no-plot"]), capsys.readouterr().err)
        assert "slice.checkpoint" in err and "now has SHA-256" in err and _sha256(ckpt)[:12] in err and "--overwrite" in err
    finally:
        shutil.copy2(kept, ckpt)


def test_a_resume_with_other_library_versions_warns_in_one_line(capsys):
    from cluster.provenance import resumed_provenance

    old = {"landscape": {"version": "0.1.0", "commit": "a"}, "libraries": {"torch": "2.5.0", "numpy": "2.0"},
           "checkpoints": [{"role": "slice.checkpoint", "path": "/x/w.pt", "sha256": "ab"}], "device": "cpu", "precision": "fp32"}
    moved = {**old, "checkpoints": [{"role": "slice.checkpoint", "path": "checkpoints/ab/w.pt", "sha256": "ab"}]}
    assert resumed_provenance(old, moved, "r.zarr") is old  # the same file elsewhere (an uploaded copy)
    assert capsys.readouterr().err == ""
    newer = {**old, "libraries": {"torch": "2.6.0", "numpy": "2.0"}}
    kept = resumed_provenance(old, newer, "r.zarr")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning: resuming r.zarr with torch 2.5.0 -> 2.6.0" in err
    assert kept["libraries"] == old["libraries"] and kept["resumes"][0]["libraries"]["torch"] == "2.6.0"
    assert resumed_provenance(old, newer, "r.zarr", computing=False) is old  # a complete result, only reported
    assert resumed_provenance(None, newer, "r.zarr")["recorded_from"].startswith("a resume")


def test_a_hessian_result_records_its_checkpoint_and_device(tiny_run, tmp_path):
    from jobs.curvature.hessian import run_hessian
    from jobs.specs import HessianSpec

    from .conftest import TINY_DATA, TINY_MODEL

    ckpt = tiny_run / "epoch_003.pt"
    spec = HessianSpec.model_validate({"name": "h", "model": TINY_MODEL, "data": TINY_DATA, "at": {"checkpoint": str(ckpt)},
                                       "top_k": 1, "eigen": {"iterations": 20, "tol": 1e-3}, "trace": None, "density": None})
    out = run_hessian(spec, out=str(tmp_path / "h.zarr"), plot=False, device="cpu")
    p = _meta(out)["provenance"]
    assert p["checkpoints"] == [{"role": "at.checkpoint", "path": str(ckpt), "sha256": _sha256(ckpt)}]
    assert (p["device"], p["precision"], p["libraries"]["torch"]) == ("cpu", spec.precision, torch.__version__)


def test_optional_libraries_are_listed_only_when_imported(monkeypatch):
    import types

    from jobs.common.provenance import library_versions

    monkeypatch.delitem(sys.modules, "transformers", raising=False)
    assert "transformers" not in library_versions()
    monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(__version__="9.9.9"))
    assert library_versions()["transformers"] == "9.9.9"


def test_status_of_a_result_path_needs_no_cluster(scanned, tmp_path, monkeypatch, capsys):
    """`landscape status RESULT` reads the result alone: progress, status, provenance; not a result: one line."""
    from .one_line import run_bad

    _, _, out = scanned
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    capsys.readouterr()
    assert main(["status", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"result: {out}" and any(ln.startswith("progress: [") and "(100%)" in ln for ln in lines)
    assert "result status: complete" in lines and any(ln.startswith("provenance: ") for ln in lines)
    (tmp_path / "notes").mkdir()
    run_bad(capsys, ["status", str(tmp_path / "notes")], "notes")
