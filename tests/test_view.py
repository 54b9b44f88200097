"""`landscape view`: a real headless chromium against a running scan (a slow model, one actor). The page
redraws the heatmap as tiles land, shows progress and an ETA, ends with the result's own values, and
the Stop button ends the server, which listens on 127.0.0.1 only."""
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zarr

from jobs.cli import main

from .browser import Browser, need_chromium
from .slow_factories import line_checkpoints
from .test_faults import subprocess_env

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def slow_plane(ckpt) -> dict:
    return {
        "name": "slow-plane",
        "model": {"kind": "import", "factory": "tests.slow_factories:make_model", "options": {"hidden": 6, "delay": 0.1}},
        "data": {"kind": "import", "factory": "tests.user_factories:make_data", "kwargs": {"n": 30}},
        "slice": {"kind": "random_plane", "checkpoint": str(ckpt), "seed": 1},
        "grid": {"x": {"min": -1.0, "max": 0.8, "num": 10}, "y": {"min": -0.5, "max": 1.0, "num": 8}},
        "tile": [2, 2],
    }


def test_view_redraws_a_running_scan_and_stops_when_asked(ray_cluster, tmp_path):
    need_chromium()
    from jobs.scan.run import run_scan
    from jobs.specs import ScanSpec

    a, _ = line_checkpoints(tmp_path)
    out = tmp_path / "slow.zarr"
    failed = []

    def scan():
        try:
            run_scan(ScanSpec.model_validate(slow_plane(a)), out=str(out), actors=1, plot=False)
        except BaseException as e:  # noqa: BLE001 (reported by the test)
            failed.append(e)

    t = threading.Thread(target=scan, daemon=True)
    t.start()
    deadline = time.time() + 120
    while not ((out / "tile_done" / "zarr.json").exists()):
        assert time.time() < deadline and not failed, f"the scan never started: {failed}"
        time.sleep(0.2)
    view = subprocess.Popen([sys.executable, "-m", "jobs.cli", "view", str(out), "--interval", "0.3"], cwd=REPO,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = view.stdout.readline()
        m = re.match(r"view: http://127\.0\.0\.1:(\d+)/ ", line)
        assert m, line
        port = int(m[1])
        seen = []
        with Browser() as b:
            b.open(f"http://127.0.0.1:{port}/")
            deadline = time.time() + 240
            while True:
                state = b.evaluate("[document.getElementById('progress').dataset.status, "
                                   "Number(document.getElementById('progress').dataset.done), "
                                   "Number(document.getElementById('map').dataset.shown || 0), "
                                   "Number(document.getElementById('map').dataset.draws), "
                                   "document.getElementById('progress').innerText]")
                seen.append(state)
                if state[0] == "complete":
                    break
                assert time.time() < deadline and not failed, (seen[-3:], failed)
                b.wait(0.2)
            t.join(60)
            assert not failed, failed
            total = 80
            midway = [s for s in seen if s[0] == "running" and 0 < s[1] < total and 0 < s[2] < total]
            assert midway, f"never saw a partial plane: {seen[:3]} ... {seen[-3:]}"
            assert any("ETA" in s[4] for s in midway), [s[4] for s in midway]
            assert seen[-1][1] == total and seen[-1][2] == total and "complete" in seen[-1][4]
            assert seen[-1][3] > midway[0][3]  # redrawn as tiles landed
            # the last drawing holds the result's own values (hover text), row i at y[i]
            drawn = b.evaluate("document.getElementById('map').data[0].text")
            loss = zarr.open_group(str(out), mode="r")["loss"][...]
            assert np.array_equal(np.array(drawn, dtype=np.float64), loss.astype(np.float64))
            assert b.errors() == []
            # nothing but this server (plotly's heatmap images are data: URLs)
            assert {u.split("/")[2] for u in b.requests() if not u.startswith("data:")} == {f"127.0.0.1:{port}"}
            b.evaluate("document.getElementById('stop').click()")
            assert view.wait(30) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if view.poll() is None:
            view.terminate()
            view.wait(20)


def test_view_refuses_a_missing_result_in_one_line(tmp_path, capsys):
    assert main(["view", str(tmp_path / "none.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no result at" in err[0]
    assert main(["view", str(tmp_path / "none.zarr"), "--interval", "0"]) == 2
    assert "--interval must be from 0.1" in capsys.readouterr().err
