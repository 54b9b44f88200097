"""`landscape submit` of a curve training spec on a real two-node Ray cluster: a Ray job that runs
`train-curve` on Ray Train workers, one per node (DDP across nodes), endpoints uploaded with the job."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from .conftest import curve_spec_dict
from .two_node import cluster  # noqa: F401 (a module fixture)

pytestmark = pytest.mark.ray


def test_submit_trains_a_curve_as_a_ray_job_on_two_ray_train_workers(cluster, digits_minima, digits_curve, tmp_path):  # noqa: F811
    spec = tmp_path / "curve.yaml"
    spec.write_text(yaml.safe_dump(curve_spec_dict(digits_minima, epochs=3)))
    out = tmp_path / "remote-curve"
    r = cluster.cli("submit", str(spec), "--out", str(out), "--workers", "2", "--wait", timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "submitted curve training 'digits-curve' (2 Ray Train worker(s))" in r.stderr
    assert "2 Ray Train worker(s), each CPU 1 GPU 0" in r.stdout  # the job's log, streamed
    record = json.loads((out / "curve.json").read_text())
    assert record["workers"] == 2 and [h["epoch"] for h in record["history"]] == [1, 2, 3]
    # The same curve as the in-process run of the same spec (its first 3 epochs), up to float rounding.
    local = json.loads((digits_curve / "curve.json").read_text())["history"][:3]
    for remote, here in zip(record["history"], local):
        assert remote["train_loss"] == pytest.approx(here["train_loss"], rel=1e-4)
    ckpt = torch.load(out / "epoch_003.pt", weights_only=True)
    assert ckpt["landscape_curve"] == 1 and [e["sha256"] for e in ckpt["endpoints"]] == [
        e["sha256"] for e in torch.load(digits_curve / "epoch_003.pt", weights_only=True)["endpoints"]
    ]
