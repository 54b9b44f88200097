"""Inputs that are accepted with a note or found where a user expects: float64 data, a factory module
in the current folder, and every example spec's own dump."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from jobs.cli import main

from .bad_input_cases import IMPORT_MODEL


def test_float64_data_is_cast_and_said(ray_cluster, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    ckpt = tmp_path / "m.pt"
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).state_dict(), ckpt)
    d = {"name": "f64", "model": IMPORT_MODEL, "data": {"kind": "import", "factory": "tests.bad_factories:data_float64"},
         "slice": {"kind": "random_line", "checkpoint": str(ckpt)}, "grid": {"x": {"min": -1, "max": 1, "num": 3}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(d))
    assert main(["run", "s.yaml", "--out", "r.zarr", "--no-plot"]) == 0
    assert "note: inputs cast from float64 to float32" in capsys.readouterr().err
    from cluster.store import ResultStore

    assert "inputs cast from float64 to float32" in ResultStore.open("r.zarr").meta["notes"]


def test_a_factory_module_in_the_current_folder_is_found_by_the_console_script(tmp_path):
    """The workers import it from the current folder; the driver (the `landscape` script) must too."""
    import subprocess
    import sys

    script = Path(sys.executable).with_name("landscape")
    if not script.exists():
        pytest.skip("no `landscape` console script next to this Python (not installed with pip -e)")
    (tmp_path / "my_factories.py").write_text(
        "import torch\nfrom torch import nn\n"
        "def model():\n    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))\n"
        "def data():\n    g = torch.Generator().manual_seed(0)\n    x = torch.randn(12, 4, generator=g)\n    return x, torch.arange(12) % 3\n"
    )
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).state_dict(), tmp_path / "m.pt")
    d = {"name": "mine", "model": {"kind": "import", "factory": "my_factories:model"},
         "data": {"kind": "import", "factory": "my_factories:data"},
         "slice": {"kind": "random_line", "checkpoint": "m.pt"}, "grid": {"x": {"min": -1, "max": 1, "num": 3}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(d))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([str(script), "validate", "s.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "valid scan 'mine'" in r.stdout


def test_every_example_spec_survives_a_round_trip_through_its_own_dump():
    """What a result records as its spec (model_dump) must validate again as the same spec."""
    from jobs.specs import load_any_spec

    for path in sorted((Path(__file__).resolve().parents[1] / "jobs" / "examples").glob("*.yaml")):
        spec = load_any_spec(path)
        again = type(spec).model_validate(spec.model_dump(mode="json"))
        assert again == spec, path.name
