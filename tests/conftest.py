"""Shared fixtures: one local Ray session for the whole run, tiny trained checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Ctrl-C stops the suite even when it lands in an in-process `main(argv)`: the CLI turns it into
    exit status 130 (right for a process), and the suite would go on with the next test."""
    yield
    from cluster import interrupts

    if interrupts.took_sigint() and not item.get_closest_marker("sends_sigint"):
        pytest.exit("interrupted (Ctrl-C inside an in-process `landscape` command)", returncode=2)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray (processes on 127.0.0.1), started once per test session."""
    import ray

    from cluster.session import loopback_only

    loopback_only()
    ray.init(
        address="local",  # never attach to a `ray start` cluster another test (or person) runs
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}},
        logging_level="WARNING",
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def one_thread():
    """Tiny models: one torch thread is faster than two fighting over a shared machine's cores (as an actor runs)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY_MODEL = {"kind": "mlp", "options": {"widths": [12]}, "seed": 0}
TINY_DATA = {"kind": "digits", "subset": 240, "seed": 0}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny MLP trained 3 epochs on 240 digits: epoch_000.pt .. epoch_003.pt."""
    from jobs.specs import TrainSpec
    from jobs.training.train import run_train

    out = tmp_path_factory.mktemp("run")
    spec = TrainSpec.model_validate(
        {"name": "tiny", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 3, "lr": 0.1, "batch_size": 32}
    )
    return run_train(spec, out=str(out))


def scan_spec_dict(tiny_run: Path, **overrides) -> dict:
    """A small non-square, asymmetric random-plane scan of the tiny MLP."""
    d = {
        "name": "tiny-plane",
        "model": TINY_MODEL,
        "data": TINY_DATA,
        "slice": {"kind": "random_plane", "checkpoint": str(tiny_run / "epoch_003.pt"), "seed": 3},
        "grid": {"x": {"min": -1.0, "max": 0.6, "num": 11}, "y": {"min": -0.4, "max": 1.2, "num": 7}},
        "tile": [3, 4],
    }
    d.update(overrides)
    return d


CURVE_MODEL = {"kind": "mlp", "options": {"widths": [32]}, "seed": 0}
CURVE_DATA = {"kind": "digits", "subset": 600, "seed": 0}


@pytest.fixture(scope="session")
def digits_minima(tmp_path_factory) -> tuple[Path, Path]:
    """Two digits MLPs trained 8 epochs from different seeds (different minima): their last checkpoints."""
    from jobs.specs import TrainSpec
    from jobs.training.train import run_train

    ends = []
    for seed in (0, 1):
        spec = TrainSpec.model_validate({"name": f"minimum-{seed}", "model": {**CURVE_MODEL, "seed": seed}, "data": CURVE_DATA,
                                         "epochs": 8, "lr": 0.05, "batch_size": 32, "seed": seed})
        ends.append(run_train(spec, out=str(tmp_path_factory.mktemp(f"minimum{seed}"))) / "epoch_008.pt")
    return ends[0], ends[1]


def curve_spec_dict(minima, **overrides) -> dict:
    d = {"name": "digits-curve", "model": CURVE_MODEL, "data": CURVE_DATA, "endpoints": [str(p) for p in minima],
         "curve": {"kind": "bezier"}, "epochs": 5, "lr": 0.05, "batch_size": 32, "seed": 0}
    d.update(overrides)
    return d


@pytest.fixture(scope="session")
def digits_curve(digits_minima, tmp_path_factory) -> Path:
    """A Bezier curve trained 5 epochs between the two minima: epoch_001.pt .. epoch_005.pt."""
    from jobs.curves.train import run_train_curve
    from jobs.specs import CurveTrainSpec

    spec = CurveTrainSpec.model_validate(curve_spec_dict(digits_minima))
    return run_train_curve(spec, out=str(tmp_path_factory.mktemp("curve")))
