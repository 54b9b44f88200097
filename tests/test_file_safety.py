"""Nothing written outside the destination, nothing of yours deleted (issue 18's file-safety cases).

Each case ends with one line and exit 2 (or 130/143 for signals), writes nothing that looks finished,
and deletes nothing the command did not write.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zarr

from cluster.lease import LEASE_NAME, LocalLease
from cluster.store import ATTR, FORMAT
from jobs.cli import main

from .one_line import run_bad
from .s3_server import BUCKET, s3  # noqa: F401 (s3: a module fixture)

META = {"format": FORMAT, "status": "complete", "identity": "abc123", "job": "scan", "name": "t"}


def make_result(path: Path, meta: dict | None = None) -> Path:
    """The smallest landscape result: its group, one array."""
    g = zarr.create_group(store=str(path), attributes={ATTR: meta or META})
    g.create_array("loss", shape=(2, 3), chunks=(2, 3), dtype="float32", fill_value=0.0)
    return path


def _put(s3, key: str, body: bytes) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3.endpoint).put_object(Bucket=BUCKET, Key=key, Body=body)  # keys as given


def upload_result(s3, tmp_path: Path, name: str, extra_keys: list[str]) -> str:
    local = make_result(tmp_path / "src" / name)
    for p in local.rglob("*"):
        if p.is_file():
            _put(s3, f"{name}/{p.relative_to(local).as_posix()}", p.read_bytes())
    for key in extra_keys:
        _put(s3, f"{name}/{key}", b"owned")
    return f"s3://{BUCKET}/{name}"


def _written(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- fetch: every key lands inside DEST -----------------------------------------------------------


@pytest.mark.parametrize("key", ["../escape", "a/../../escape", "./escape", "/abs/escape", "loss//escape"])
def test_fetch_refuses_an_s3_key_that_leaves_the_destination(s3, tmp_path, capsys, key):
    name = f"evil{abs(hash(key)) % 10**6}.zarr"
    url = upload_result(s3, tmp_path, name, [key])
    out = tmp_path / "out"
    out.mkdir()
    line = run_bad(capsys, ["fetch", url, "-o", str(out / "copy.zarr")], repr(key), "outside", "nothing was fetched")
    assert str(out / "copy.zarr") in line
    assert _written(out) == []  # no DEST, no DEST.partial-*
    assert not (tmp_path / "escape").exists() and not (out / "escape").exists()


def test_fetch_of_a_job_id_checks_the_keys_of_its_output(s3, tmp_path, capsys, monkeypatch):
    url = upload_result(s3, tmp_path, "job.zarr", ["../../escape"])
    monkeypatch.setattr("jobs.service.remote.job_output", lambda job_id, address: url)
    run_bad(capsys, ["fetch", "raysubmit_abc", "-o", str(tmp_path / "o" / "c.zarr")], "'../../escape'", "outside")
    assert not (tmp_path / "o").exists() and not (tmp_path / "escape").exists()


@pytest.mark.parametrize("target", ["file", "folder"])
def test_fetch_refuses_a_local_result_with_a_symlink_leading_out(tmp_path, capsys, target):
    src = make_result(tmp_path / "src.zarr")
    secret = tmp_path / "secret"
    if target == "file":
        secret.write_text("private")
    else:
        secret.mkdir()
        (secret / "key").write_text("private")
    (src / "loss" / "leak").symlink_to(secret)
    run_bad(capsys, ["fetch", str(src), "-o", str(tmp_path / "out" / "c.zarr")], "'loss/leak", "symlink")
    assert not (tmp_path / "out").exists()


def test_fetch_copies_a_symlink_that_stays_inside_the_source(tmp_path, capsys):
    src = make_result(tmp_path / "src.zarr")
    (src / "alias.json").symlink_to(src / "zarr.json")
    assert main(["fetch", str(src), "-o", str(tmp_path / "c.zarr")]) == 0
    assert (tmp_path / "c.zarr" / "alias.json").read_bytes() == (src / "zarr.json").read_bytes()


def test_fetch_under_a_file_says_which_file(tmp_path, capsys):
    src = make_result(tmp_path / "src.zarr")
    (tmp_path / "plain").write_text("x")
    run_bad(capsys, ["fetch", str(src), "-o", str(tmp_path / "plain" / "sub" / "c.zarr")], str(tmp_path / "plain"), "is a file", "-o")
    assert (tmp_path / "plain").read_text() == "x"


# -- fetch --overwrite keeps the user's entries; killed fetches are cleaned up -------------------


def test_fetch_overwrite_keeps_your_files_inside_the_result(tmp_path, capsys):
    old = make_result(tmp_path / "old.zarr", {**META, "identity": "old"})
    new = make_result(tmp_path / "new.zarr", {**META, "identity": "new"})
    dest = tmp_path / "dest.zarr"
    assert main(["fetch", str(old), "-o", str(dest)]) == 0
    (dest / "my_notes.txt").write_text("mine")
    (dest / "my_dir").mkdir()
    (dest / "my_dir" / "a.txt").write_text("also mine")
    assert main(["fetch", str(new), "-o", str(dest), "--overwrite"]) == 0
    assert zarr.open_group(str(dest), mode="r").attrs[ATTR]["identity"] == "new"
    assert (dest / "my_notes.txt").read_text() == "mine" and (dest / "my_dir" / "a.txt").read_text() == "also mine"
    assert sorted(p.name for p in dest.iterdir()) == ["loss", "my_dir", "my_notes.txt", "zarr.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest.zarr", "new.zarr", "old.zarr"]  # no .old-*, no .partial-*


def test_fetch_overwrite_refuses_when_your_entry_has_a_name_of_the_result(tmp_path, capsys):
    old = make_result(tmp_path / "old.zarr", {**META, "identity": "old"})
    new = make_result(tmp_path / "new.zarr", {**META, "identity": "new"})
    new_group = zarr.open_group(str(new), mode="r+")
    new_group.create_array("notes", shape=(1,), dtype="float32", fill_value=0.0)
    dest = tmp_path / "dest.zarr"
    assert main(["fetch", str(old), "-o", str(dest)]) == 0
    capsys.readouterr()
    (dest / "notes").mkdir()
    (dest / "notes" / "mine.txt").write_text("mine")
    run_bad(capsys, ["fetch", str(new), "-o", str(dest), "--overwrite"], "notes", "of yours")
    assert (dest / "notes" / "mine.txt").read_text() == "mine"
    assert zarr.open_group(str(dest), mode="r").attrs[ATTR]["identity"] == "old"


def test_fetch_removes_only_the_partial_copies_of_dead_fetches(tmp_path, capsys):
    src = make_result(tmp_path / "src.zarr")
    out = tmp_path / "out"
    dead = out / "c.zarr.partial-0123abcd"  # a killed fetch: its lease file, nobody holding it
    make_result(dead)
    (dead / LEASE_NAME).write_text('{"pid": 999999, "command": "landscape fetch"}')
    live = out / "c.zarr.partial-89abcdef"  # a fetch copying now
    live.mkdir()
    holder = LocalLease(str(live), "landscape fetch").acquire()
    yours = out / "c.zarr.partial-feedf00d"  # no lease: not made by a fetch
    yours.mkdir()
    (yours / "x").write_text("mine")
    other = out / "d.zarr.partial-0123abcd"  # another destination's
    make_result(other)
    (other / LEASE_NAME).write_text("{}")
    try:
        assert main(["fetch", str(src), "-o", str(out / "c.zarr")]) == 0
        assert "removed c.zarr.partial-0123abcd" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [
            "c.zarr", "c.zarr.partial-89abcdef", "c.zarr.partial-feedf00d", "d.zarr.partial-0123abcd"]
        assert (yours / "x").read_text() == "mine"
        assert not (out / "c.zarr" / LEASE_NAME).exists()
    finally:
        holder.release()


def test_an_interrupted_local_fetch_leaves_a_partial_the_next_fetch_removes(tmp_path, capsys, monkeypatch):
    import jobs.service.fetch

    src = make_result(tmp_path / "src.zarr")

    def interrupt(self, files, nbytes):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(jobs.service.fetch._Counter, "update", interrupt)
        m.setattr(jobs.service.fetch, "_remove", lambda path: None)  # as if killed: nothing cleaned up,
        m.setattr(LocalLease, "_release", lambda self: os.close(self._fd))  # the lease file stays, its lock goes
        assert main(["fetch", str(src), "-o", str(tmp_path / "o" / "c.zarr")]) == 130
    left = list((tmp_path / "o").iterdir())
    assert len(left) == 1 and left[0].name.startswith("c.zarr.partial-")
    assert main(["fetch", str(src), "-o", str(tmp_path / "o" / "c.zarr")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["c.zarr"]


def test_fetch_says_which_file_it_could_not_write(tmp_path, capsys, monkeypatch):
    import errno

    src = make_result(tmp_path / "src.zarr")
    real_get = type(__import__("fsspec").filesystem("file")).get

    def full_disk(self, rpath, lpath, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), lpath[0])

    monkeypatch.setattr(type(__import__("fsspec").filesystem("file")), "get", full_disk)
    run_bad(capsys, ["fetch", str(src), "-o", str(tmp_path / "o" / "c.zarr")], "No space left on device",
            str(tmp_path / "o" / "c.zarr.partial-"))
    monkeypatch.setattr(type(__import__("fsspec").filesystem("file")), "get", real_get)
    assert list((tmp_path / "o").iterdir()) == []


# -- train, train-curve: delete only what their record lists ------------------------------------


def _write_yaml(folder: Path, d: dict, name: str) -> str:
    import yaml

    p = folder / name
    p.write_text(yaml.safe_dump(d))
    return str(p)


def _someones_checkpoints(folder: Path, source: Path, names=("epoch_005.pt", "epoch_010.pt", "epoch_020.pt")) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(source.read_bytes())
    return {n: (folder / n).read_bytes() for n in names}


def test_train_curve_refuses_a_folder_of_model_checkpoints_holding_its_own_endpoint(digits_minima, tmp_path, capsys):
    from .conftest import curve_spec_dict

    out = tmp_path / "models"
    before = _someones_checkpoints(out, digits_minima[0])
    spec = _write_yaml(tmp_path, curve_spec_dict([out / "epoch_005.pt", digits_minima[1]], epochs=1), "curve.yaml")
    run_bad(capsys, ["train-curve", spec, "--out", str(out)], "epoch_005.pt", "did not write", "no curve.json", "left alone")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    run_bad(capsys, ["train-curve", spec, "--out", str(out), "--overwrite"], "epoch_005.pt", "did not write")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_train_refuses_someones_checkpoints_without_a_record(tiny_run, tmp_path, capsys):
    from .conftest import TINY_DATA, TINY_MODEL

    out = tmp_path / "theirs"
    before = _someones_checkpoints(out, tiny_run / "epoch_003.pt", ("epoch_001.pt", "epoch_007.pt"))
    spec = _write_yaml(tmp_path, {"name": "t", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 1, "batch_size": 64},
                       "train.yaml")
    for extra in ([], ["--overwrite"]):
        run_bad(capsys, ["train", spec, "--out", str(out), *extra], "epoch_001.pt", "did not write", "no train.json")
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_train_deletes_only_the_files_its_record_lists(tiny_run, tmp_path, capsys):
    import json

    from .conftest import TINY_DATA, TINY_MODEL

    out = tmp_path / "run"
    d = {"name": "t", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 2, "batch_size": 64}
    assert main(["train", _write_yaml(tmp_path, d, "a.yaml"), "--out", str(out)]) == 0
    record = json.loads((out / "train.json").read_text())
    assert record["finished"] is True and record["files"] == ["epoch_000.pt", "epoch_001.pt", "epoch_002.pt"]
    # a killed run of another spec: its record lists what it was writing; a file it does not list stays refused
    (out / "epoch_009.pt").write_bytes((out / "epoch_001.pt").read_bytes())
    capsys.readouterr()
    d1 = {**d, "epochs": 1}
    run_bad(capsys, ["train", _write_yaml(tmp_path, d1, "b.yaml"), "--out", str(out), "--overwrite"], "epoch_009.pt")
    (out / "epoch_009.pt").unlink()
    assert main(["train", _write_yaml(tmp_path, d1, "b.yaml"), "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["epoch_000.pt", "epoch_001.pt", "train.json"]  # epoch_002 was its own


def test_a_killed_train_curve_is_redone_from_its_record(digits_minima, tmp_path, capsys):
    import json

    from .conftest import curve_spec_dict

    spec = _write_yaml(tmp_path, curve_spec_dict(digits_minima, epochs=2), "curve.yaml")
    out = tmp_path / "curve"
    assert main(["train-curve", spec, "--out", str(out)]) == 0
    record = json.loads((out / "curve.json").read_text())
    record["finished"] = False  # as a killed run leaves it
    (out / "curve.json").write_text(json.dumps(record))
    (out / "epoch_002.pt").unlink()
    (out / "epoch_002.pt.tmp").write_bytes(b"half")
    capsys.readouterr()
    assert main(["train-curve", spec, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["curve.json", "epoch_001.pt", "epoch_002.pt"]


def test_a_curve_checkpoint_whose_endpoints_are_strings_is_refused_in_one_line(digits_curve, tmp_path, capsys):
    import torch

    from .conftest import CURVE_DATA, CURVE_MODEL

    record = torch.load(digits_curve / "epoch_005.pt", weights_only=True)
    record["endpoints"] = [e["path"] for e in record["endpoints"]]
    torch.save(record, tmp_path / "strings.pt")
    scan = {"name": "c", "model": CURVE_MODEL, "data": CURVE_DATA, "slice": {"kind": "curve", "curve": str(tmp_path / "strings.pt")},
            "grid": {"x": {"min": 0.0, "max": 1.0, "num": 5}}}
    spec = _write_yaml(tmp_path, scan, "scan.yaml")
    for argv in (["validate", spec], ["run", spec, "--out", str(tmp_path / "r.zarr")]):
        run_bad(capsys, argv, "damaged curve checkpoint", "endpoints", "str")
    assert not (tmp_path / "r.zarr").exists()


_FULL_DISK = """
import errno, os, sys
import landscape.checkpoints as c
real = open
def full_on_second(path, mode="r", *a, **k):
    if "w" in mode and str(path).endswith("epoch_002.pt.tmp"):
        f = real(path, mode, *a, **k)
        f.write(b"half")
        f.close()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real(path, mode, *a, **k)
c.open = full_on_second  # the module's open: the disk fills while epoch_002.pt is written
from jobs.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_train_curve_on_a_full_disk_ends_in_one_line_naming_the_path(digits_minima, tmp_path):
    import subprocess
    import sys

    from .conftest import REPO, curve_spec_dict

    spec = _write_yaml(tmp_path, curve_spec_dict(digits_minima, epochs=3), "curve.yaml")
    out = tmp_path / "curve"
    p = subprocess.run([sys.executable, "-c", _FULL_DISK, "train-curve", spec, "--out", str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    err = p.stderr.strip()
    assert p.returncode == 2 and "Traceback" not in err, err
    assert err.splitlines()[-1] == (f"landscape: error: cannot write {out / 'epoch_002.pt'}: No space left on device; "
                                    "free space there or choose another --out")
    assert sorted(q.name for q in out.iterdir()) == ["curve.json", "epoch_001.pt"]  # no .tmp; not finished:
    import json

    assert json.loads((out / "curve.json").read_text())["finished"] is False
