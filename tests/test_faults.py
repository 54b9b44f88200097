"""Faults on real processes: a killed actor, poison tiles, a lost node, a killed driver; Ray metrics.

Every disturbed scan must end bit-identical (fp32) to an undisturbed one. The
scans are made slow and fault-prone by `tests.slow_factories` (a user model
that sleeps, marks which process evaluates, and can raise or SIGKILL its own
process at chosen grid points); tests wait for evidence of progress (marks,
`tile_done`), never for fixed times.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr

from cluster.metrics import ScanMetrics
from cluster.store import ResultStore
from jobs.cli import main
from jobs.scan.run import run_scan
from jobs.specs import ScanSpec

from .procs import alive, descendants, group, kill_driver, reap
from .slow_factories import line_checkpoints

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[1]
TILES = 12  # 24 grid points, 2 per tile
POISON_X = [0.36, 0.38]  # holds only grid point 10 (x = -0.5 + 10 * 2/23 = 0.3696): tile-5


def spec_dict(ckpts, name: str = "faulty", cluster: dict | None = None, **options) -> dict:
    a, b = ckpts
    return {
        "name": name,
        "model": {"kind": "import", "factory": "tests.slow_factories:make_model", "options": {"hidden": 6, **options}},
        "data": {"kind": "import", "factory": "tests.user_factories:make_data", "kwargs": {"n": 30}},
        "slice": {"kind": "line_between", "checkpoints": [str(a), str(b)]},
        "grid": {"x": {"min": -0.5, "max": 1.5, "num": 24}},
        "tile": 2,
        "cluster": cluster or {},
    }


def write_spec(folder: Path, d: dict, name: str = "spec.yaml") -> str:
    path = folder / name
    path.write_text(yaml.safe_dump(d))
    return str(path)


def arrays(out) -> dict[str, np.ndarray]:
    g = zarr.open_group(str(out), mode="r")
    return {k: g[k][...] for k in ("loss", "accuracy")}


def assert_same(out, baseline) -> None:
    got = arrays(out)
    for k in baseline:
        assert got[k].dtype == np.float32
        assert np.array_equal(got[k], baseline[k]), k  # bit-identical, NaN nowhere


def tiles_done(out) -> int:
    try:
        return int(zarr.open_group(str(out), mode="r")["tile_done"][...].sum())
    except Exception:  # not created yet
        return 0


def wait_for(pred, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the driver exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def subprocess_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # the CLI reads it as --address
    env.update(
        PYTHONPATH=str(REPO),
        RAY_USAGE_STATS_ENABLED="0",
        # On Linux Ray rewrites a 127.0.0.1 address to the machine's other IP; this keeps it on loopback.
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
    )
    return env


def start_driver(args: list[str], log: Path) -> subprocess.Popen:
    """`landscape run ...` in its own process (and session, so its leftovers can be found)."""
    with open(log, "wb") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "run", *args, "--no-plot"],
            cwd=REPO, env=subprocess_env(), stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
        )


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return line_checkpoints(tmp_path_factory.mktemp("ckpts"))


@pytest.fixture(scope="module")
def baseline(ray_cluster, ckpts, tmp_path_factory):
    """The undisturbed scan (no delay, no faults: those options do not change a number)."""
    folder = tmp_path_factory.mktemp("baseline")
    out = folder / "base.zarr"
    spec_path = write_spec(folder, spec_dict(ckpts))
    run_scan(ScanSpec.model_validate(spec_dict(ckpts)), out=str(out), actors=2, plot=False)
    base = arrays(out)
    assert np.isfinite(base["loss"]).all() and np.ptp(base["loss"]) > 0.01  # a real landscape, not a constant
    return base, out, spec_path


# -- a: actors ------------------------------------------------------------------------------


def test_a_killed_actors_tile_is_evaluated_again_and_the_result_is_unchanged(ray_cluster, ckpts, baseline, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "killed.zarr"
    spec = ScanSpec.model_validate(spec_dict(ckpts, delay=0.1, mark_dir=str(marks)))
    killed: list[int] = []

    def kill_first_busy_actor():
        wait_for(lambda: any(marks.iterdir()), 120, "an actor to start evaluating")
        pid = int(next(marks.iterdir()).name)
        os.kill(pid, signal.SIGKILL)  # mid-tile: every grid point sleeps 0.1 s after marking
        killed.append(pid)

    killer = threading.Thread(target=kill_first_busy_actor, daemon=True)
    killer.start()
    run_scan(spec, out=str(out), actors=2, plot=False)
    killer.join(timeout=10)
    assert killed and not alive(killed[0])
    meta = ResultStore.open(str(out)).meta
    assert meta["status"] == "complete"
    assert meta["actor_deaths"] >= 1 and meta["retries"] >= 1, meta
    assert_same(out, baseline[0])


@pytest.mark.parametrize("fault, needle", [("raise_at", "RuntimeError: poisoned grid point x=0.369565"), ("die_at", "ActorDiedError")])
def test_a_tile_that_keeps_failing_fails_the_job_naming_the_tile_and_the_error(ray_cluster, ckpts, tmp_path, capsys, fault, needle):
    d = spec_dict(ckpts, cluster={"max_attempts": 2}, **{fault: POISON_X})
    out = tmp_path / "poison.zarr"
    code = main(["run", write_spec(tmp_path, d), "--out", str(out), "--actors", "1", "--no-plot"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err[-1].startswith("landscape: error: tile-5 (x 10:12) failed 2 times (cluster.max_attempts); last error: "), err[-1]
    assert needle in err[-1]
    store = ResultStore.open(str(out))
    assert not store.done_mask()[5] and np.isnan(arrays(out)["loss"][10])
    # The job stopped its actors: the shared session has its CPUs back for the next test.
    import ray

    wait_for(lambda: ray.available_resources().get("CPU", 0) >= ray.cluster_resources()["CPU"], 30, "the CPUs to be freed")


def test_an_evaluator_that_cannot_be_built_on_the_actors_fails_at_once(ray_cluster, ckpts, tmp_path, capsys):
    d = spec_dict(ckpts, only_in_pid=os.getpid())  # the driver (this process) builds it, no actor can
    t0 = time.monotonic()
    assert main(["run", write_spec(tmp_path, d), "--out", str(tmp_path / "x.zarr"), "--actors", "2", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        "landscape: error: an actor failed to build its evaluator: model.factory 'tests.slow_factories:make_model' "
        "raised RuntimeError: cannot build"
    ), err
    assert time.monotonic() - t0 < 60  # no retry loop, no placement timeout


# -- b: a node ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metric_values(text: str, scan: str) -> dict[str, float]:
    """{'tiles_done': 3.0, ...} from a Prometheus page, for one scan tag."""
    out = {}
    for m in re.finditer(r'^ray_landscape_(\w+)\{([^}]*)\} (\S+)$', text, re.M):
        if f'scan="{scan}"' in m[2]:
            out[m[1]] = float(m[3])
    return out


@pytest.fixture(scope="module")
def two_nodes():
    """A head and a worker node (1 CPU each, 127.0.0.1), run by this process without connecting to it.

    ray.init() is per process and the session's own Ray is already up here, so the
    driver runs in a subprocess. The head exports Prometheus metrics on a free port.
    """
    from ray._private import utils as ray_utils
    from ray.cluster_utils import Cluster

    port = _free_port()
    with pytest.MonkeyPatch.context() as mp:
        # Cluster() records itself as "the current cluster", which every later address-less
        # ray.init() on this machine would join: keep it private.
        mp.setattr(ray_utils, "write_ray_address", lambda *a, **k: None)
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # inherited by the node processes
        node_args = dict(node_ip_address="127.0.0.1", num_cpus=1, include_dashboard=False)
        cluster = Cluster(
            initialize_head=True,
            connect=False,
            head_node_args=dict(
                **node_args,
                metrics_export_port=port,
                _system_config={
                    "metrics_report_interval_ms": 300,  # default 10 s
                    "health_check_period_ms": 500,  # notice a crashed node in ~1 s, not ~15 s
                    "health_check_failure_threshold": 2,
                },
            ),
        )
        try:
            worker = cluster.add_node(**node_args)
        except BaseException:
            cluster.remove_node(cluster.head_node, allow_graceful=False)
            raise
    orphans: set[int] = set()  # a removed node's processes that outlive its raylet (seen: the head's agents)
    yield cluster, worker, port, orphans
    for node in reversed(cluster.list_all_nodes()):  # workers, then the head
        orphans |= node_tree(node)
        cluster.remove_node(node, allow_graceful=False)
    reap(orphans, grace_s=2)


def node_tree(node) -> set[int]:
    """Pids of a cluster_utils node's processes and their children (workers, agents)."""
    pids = {info.process.pid for infos in node.all_processes.values() for info in infos}
    return pids.union(*(descendants(p) for p in pids))


@pytest.fixture(scope="module")
def node_loss(two_nodes, ckpts, tmp_path_factory):
    """A 2-actor scan on the 2-node cluster whose worker node is killed mid-scan; Prometheus scraped meanwhile."""
    cluster, worker, port, orphans = two_nodes
    folder = tmp_path_factory.mktemp("node")
    marks, out = folder / "marks", folder / "node.zarr"
    marks.mkdir()
    spec = write_spec(folder, spec_dict(ckpts, name="node-loss", delay=0.15, mark_dir=str(marks)))
    log = folder / "driver.log"
    p = start_driver([spec, "--out", str(out), "--address", cluster.address, "--actors", "2"], log)
    pages: list[str] = []

    def scrape():
        try:
            pages.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode())
        except OSError:
            pass  # the agent may not serve yet
        time.sleep(0.3)

    try:
        # One actor per node (1 CPU each): two marking pids = both nodes are evaluating.
        wait_for(lambda: len(list(marks.iterdir())) >= 2 and tiles_done(out) >= 1, 120, "both actors to work", p)
        orphans.update(node_tree(worker))
        cluster.remove_node(worker, allow_graceful=False)  # SIGKILL: a crash, not a drain
        while p.poll() is None and len(pages) < 300:
            scrape()
        p.wait(timeout=60)
        end = time.monotonic() + 5  # the last report may trail a short scan
        while not any(_metric_values(page, "node-loss") for page in pages) and time.monotonic() < end:
            scrape()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out, p.returncode, log.read_text(), pages


def test_a_scan_survives_losing_a_node(node_loss, baseline):
    out, rc, log, _ = node_loss
    assert rc == 0, log
    meta = ResultStore.open(str(out)).meta
    assert meta["status"] == "complete" and meta["actor_deaths"] >= 1 and meta["retries"] >= 1, meta
    assert_same(out, baseline[0])


def test_the_scans_progress_is_exported_as_ray_metrics(node_loss):
    *_, log, pages = node_loss
    seen = [v for v in (_metric_values(page, "node-loss") for page in pages) if v]
    assert seen, f"no landscape_* metric in {len(pages)} scrapes of the head's Prometheus endpoint\n{log}"
    last = seen[-1]
    assert last["tiles_total"] == TILES
    assert set(last) >= {"tiles_done", "evals_per_second", "actor_deaths", "tile_retries", "points_total"}
    assert max(v.get("tiles_done", 0) for v in seen) >= 1 and max(v.get("points_total", 0) for v in seen) >= 2


def test_scan_metrics_keep_values_and_fail_soft(caplog):
    m = ScanMetrics("unit")
    m.update(tiles_done=2, tiles_total=9, evals_per_second=12.5)
    m.add_points(4)
    assert m.values == {"tiles_done": 2.0, "tiles_total": 9.0, "evals_per_second": 12.5} and m.points == 4
    with pytest.raises(KeyError, match="tiles_don"):
        m.update(tiles_don=3)
    broken = ScanMetrics(None)  # Ray refuses a non-string tag: recording fails, the scan must not
    broken.update(tiles_done=1)
    broken.update(tiles_done=2)
    assert broken.values["tiles_done"] == 2.0
    assert sum("metrics are unavailable" in r.message for r in caplog.records) == 1


# -- c: the driver --------------------------------------------------------------------------


def _chunk_mtimes(out: Path, done: np.ndarray) -> dict[int, int]:
    return {i: (out / "loss" / "c" / str(i)).stat().st_mtime_ns for i in np.flatnonzero(done)}


def test_a_killed_driver_resumes_only_the_missing_tiles(ray_cluster, ckpts, baseline, tmp_path, capsys):
    out = tmp_path / "driver.zarr"
    spec = write_spec(tmp_path, spec_dict(ckpts, delay=0.2))
    p = start_driver([spec, "--out", str(out)], tmp_path / "driver.log")  # with its own local Ray
    try:
        wait_for(lambda: tiles_done(out) >= 2, 120, "two stored tiles", p)
    finally:
        leftovers = kill_driver(p)
    assert not any(alive(pid) for pid in leftovers) and not group(p.pid)
    done = ResultStore.open(str(out)).done_mask()
    n_done = int(done.sum())
    assert 2 <= n_done < TILES, n_done
    before = _chunk_mtimes(out, done)
    from jobs.service.remote import progress_lines

    assert "result status: running (no live writer: the run was killed; run it again to resume)" in progress_lines(str(out))

    # Another spec into the same output is refused, and leaves it alone.
    other = write_spec(tmp_path, {**spec_dict(ckpts, delay=0.2), "grid": {"x": {"min": -0.5, "max": 1.5, "num": 25}}}, "other.yaml")
    capsys.readouterr()
    assert main(["run", other, "--out", str(out), "--no-plot"]) == 2
    assert "holds a different scan" in capsys.readouterr().err
    assert np.array_equal(ResultStore.open(str(out)).done_mask(), done)

    # The same command again resumes: only the tiles not marked done are evaluated.
    assert main(["run", spec, "--out", str(out), "--no-plot"]) == 0
    assert f"resuming {out}: {TILES - n_done} of {TILES} tiles left to evaluate" in capsys.readouterr().err
    assert _chunk_mtimes(out, done) == before  # stored tiles were not rewritten
    assert ResultStore.open(str(out)).meta["status"] == "complete"
    assert_same(out, baseline[0])


def test_a_tile_written_but_not_marked_done_is_evaluated_again(ray_cluster, baseline, tmp_path, capsys):
    """A crash between store.write_tile's data and its tile_done mark costs that tile only."""
    import shutil

    base, base_out, spec_path = baseline
    out = tmp_path / "torn.zarr"
    shutil.copytree(base_out, out)
    g = zarr.open_group(str(out), mode="r+")
    g["loss"][6:8] = 123.0  # tile-3: data landed (say, a half-written earlier attempt) ...
    g["tile_done"][3] = 0  # ... the mark did not
    ResultStore(g).update_meta(status="running")
    assert main(["run", spec_path, "--out", str(out), "--no-plot"]) == 0
    assert f"resuming {out}: 1 of {TILES} tiles left to evaluate" in capsys.readouterr().err
    assert_same(out, base)
