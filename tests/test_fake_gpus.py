"""What can break on a GPU cluster, tested on a Ray that pretends to have 2 GPUs (tests/fake_gpus.py).

Placement of whole and fractional GPU actors, refusing requests the cluster cannot
meet in one line (instead of actors pending forever), and an actor that is given a
GPU PyTorch cannot use saying so in one line naming its node.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from .conftest import scan_spec_dict
from .fake_gpus import GPUS, fake_gpus  # noqa: F401 (a module fixture)
from .one_line import assert_one_line

pytestmark = pytest.mark.ray

PLACEMENT = Path(__file__).with_name("fake_gpu_placement.py")


@pytest.fixture(scope="module")
def placed(fake_gpus):
    cases = [["whole", 2, 1.0], ["half", 4, 0.5], ["quarter", 2, 0.25], ["none", 1, 0.0]]
    r = fake_gpus.run([sys.executable, str(PLACEMENT), fake_gpus.address, json.dumps(cases)], timeout=300)
    assert r.returncode == 0, r.stderr[-1500:] + (fake_gpus.root / "head.log").read_text()[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_whole_gpu_actors_get_one_gpu_each(placed):
    ids = [a["gpu_ids"] for a in placed["whole"]["actors"]]
    assert sorted(ids) == [["0"], ["1"]]
    for r in placed["whole"]["results"]:  # every item ran where Ray said, with CUDA limited to that GPU
        assert r["cvd"] == r["gpu_ids"][0] and len(r["gpu_ids"]) == 1


def test_half_gpu_actors_share_each_gpu_in_pairs(placed):
    ids = Counter(a["gpu_ids"][0] for a in placed["half"]["actors"])
    assert all(len(a["gpu_ids"]) == 1 for a in placed["half"]["actors"])
    assert ids == Counter({"0": 2, "1": 2})
    assert sorted(r["cvd"] for r in placed["half"]["results"]) == ["0", "0", "1", "1"]


def test_quarter_gpu_actors_are_packed_onto_one_gpu(placed):
    assert [a["gpu_ids"] for a in placed["quarter"]["actors"]] in ([["0"], ["0"]], [["1"], ["1"]])


def test_an_actor_asking_no_gpu_keeps_off_the_gpus(placed):
    (actor,) = placed["none"]["actors"]
    assert actor["gpu_ids"] == [] and actor["device"] == "cpu"
    (seen,) = placed["none"]["results"]
    assert seen["cvd"] == "" and not seen["torch_sees_cuda"]  # on a GPU node too: CUDA hidden from it


def test_the_actors_record_their_node(placed, fake_gpus):
    for case in placed.values():
        assert all(a["node_ip"] == "127.0.0.1" and a["node_id"] for a in case["actors"])


@pytest.fixture(scope="module")
def spec_file(fake_gpus, tiny_run) -> Path:
    p = fake_gpus.root / "scan.yaml"
    p.write_text(yaml.safe_dump(scan_spec_dict(tiny_run)))
    return p


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--actors", "3", "--gpus-per-actor", "1"], f"the actors ask for 3 GPUs in all and the cluster has {GPUS}"),
        (["--actors", "5", "--gpus-per-actor", "0.5"], f"the actors ask for 2.5 GPUs in all and the cluster has {GPUS}"),
        (["--gpus-per-actor", "3"], "no actor can be placed"),
    ],
    ids=["3-whole", "5-halves", "one-too-big"],
)
def test_more_gpus_than_the_cluster_has_is_refused_at_once(fake_gpus, spec_file, args, expected):
    out = fake_gpus.root / "refused.zarr"
    r = fake_gpus.cli("run", str(spec_file), "--address", fake_gpus.address, "--out", str(out), "--no-plot", *args,
                      timeout=120)
    line = assert_one_line(r.returncode, r.stderr, [expected, "lower "], started=True)  # the scan's first line came before
    assert "the cluster has CPU 4, GPU 2" in line
    assert not out.exists()  # refused before anything was written


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a usable CUDA device")
def test_an_actor_given_a_gpu_torch_cannot_use_says_so_naming_its_node(fake_gpus, spec_file):
    out = fake_gpus.root / "no-cuda.zarr"
    r = fake_gpus.cli("run", str(spec_file), "--address", fake_gpus.address, "--out", str(out), "--no-plot",
                      "--gpus-per-actor", "1", timeout=180)
    # Ray forwards the failed actor's own traceback to the driver's stderr first; ours is the last line.
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("landscape: error: ") and re.search(r"gave this actor GPU [01] \(CUDA_VISIBLE_DEVICES=.[01].\)", line), line
    assert "node 127.0.0.1 (" in line and "gave this actor GPU" in line, line
    assert "no CUDA" in line or "without CUDA" in line or "does not initialize" in line, line
