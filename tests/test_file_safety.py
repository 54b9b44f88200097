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
    monkeypatch.setattr("jobs.remote.job_output", lambda job_id, address: url)
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
    import jobs.fetch

    src = make_result(tmp_path / "src.zarr")

    def interrupt(self, files, nbytes):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(jobs.fetch._Counter, "update", interrupt)
        m.setattr(jobs.fetch, "_remove", lambda path: None)  # as if killed: nothing cleaned up,
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
