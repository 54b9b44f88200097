"""Run by tests/test_ctrl_c.py in a pytest subprocess (not collected on its own): tests that block
inside the session Ray until Ctrl-C."""

import os
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray


def _ready() -> None:
    Path(os.environ["SIGINT_PROBE_READY"]).write_text("ready")


def test_sleeps(ray_cluster):
    _ready()
    time.sleep(600)


def test_waits_on_ray(ray_cluster):
    @ray_cluster.remote
    def slow():
        time.sleep(600)

    ref = slow.remote()
    _ready()
    ray_cluster.get(ref)


def test_cli_in_process(tiny_run, tmp_path, ray_cluster):
    """A long scan through `main(argv)`, as many tests run the CLI: main() turns Ctrl-C into 130."""
    import yaml

    from jobs.cli import main

    from .conftest import scan_spec_dict

    grid = {"x": {"min": -1, "max": 1, "num": 400}, "y": {"min": -1, "max": 1, "num": 300}}
    spec = tmp_path / "long.yaml"
    spec.write_text(yaml.safe_dump(scan_spec_dict(tiny_run, name="long", grid=grid, tile=2)))
    out = tmp_path / "long.zarr"

    def ready_once_tiles_are_stored():  # the driver is in its loop, main()'s handler installed
        while not (out / "tile_done").exists():
            time.sleep(0.1)
        time.sleep(2)
        _ready()

    threading.Thread(target=ready_once_tiles_are_stored, daemon=True).start()
    main(["run", str(spec), "--out", str(out), "--no-plot"])


def test_after_the_interrupted_one():
    """Must never start: Ctrl-C ended the suite."""
    Path(os.environ["SIGINT_PROBE_READY"]).with_suffix(".went_on").write_text("went on")
    time.sleep(600)
