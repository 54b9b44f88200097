"""`landscape submit/status/logs/stop/list`: scans as Ray jobs, through the Ray Jobs API.

A submitted scan is a Ray job whose entrypoint is `PYTHON -m jobs.service.bootstrap run` (`landscape run` once the
bootstrap found that PYTHON, `--python`, has the libraries; else one line saying what to install where) on the
cluster's head node (the driver). Its runtime env `working_dir` is a folder built (jobs/service/bundle.py)
here: this package's code (so the job runs the client's version), the spec, and the
checkpoints it names (with paths rewritten to their copies), plus the module of a
`kind: import` factory when it lives under the current directory. The job's
metadata records where the result goes (`landscape_output`); `status`, `list` and
`landscape fetch` read it from there. The job id is Ray's submission id, so
`ray job status ID` sees the same job.

The address is the dashboard's HTTP address (http://HEAD:8265), as for `ray job`.
Clusters with token authentication need RAY_AUTH_MODE=token here, and the token in
RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token; Ray's client then sends it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import tempfile
from pathlib import Path

from landscape.errors import ClusterError, ResultError

from .bundle import (
    MAX_UPLOAD,
    build_bundle,
    check_checkpoints,
    entrypoint,
    factory_sources,
    job_env,
    new_job_id,
    remote_output,
)
from .bootstrap import DEFAULT_PYTHON
from .ray_jobs import (
    KIND_KEY,
    NAME_KEY,
    OUTPUT_KEY,
    SPEC_KEY,
    Jobs,
    first_line,
    job_output,  # noqa: F401  (jobs.service.fetch resolves a job id through here)
    state_of,
)


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the commands ------------------------------------------------------------------


def _addr_flag(args: argparse.Namespace) -> str:
    """How to repeat --address in the commands we suggest (nothing when it came from the env)."""
    return f" --address {shlex.quote(args.address)}" if args.address else ""


def _job_kind(spec, args: argparse.Namespace) -> str:
    """scan or curve (training); ClusterError for specs that do not run as Ray jobs or flags that do not fit."""
    from ..specs import CurveTrainSpec, ScanSpec

    if isinstance(spec, CurveTrainSpec):
        if args.actors or args.gpus_per_actor is not None:
            raise ClusterError("--actors and --gpus-per-actor are for scans; a curve trains on --workers N (Ray Train)")
        return "curve"
    if type(spec) is not ScanSpec:
        raise ClusterError(f"{args.spec} is a {type(spec).__name__}; `landscape submit` runs scans and curve training "
                           "(run the others locally)")
    if args.workers:
        raise ClusterError("--workers is for curve training specs; a scan takes --actors")
    return "scan"


def curve_output(out: str | None, spec) -> str:
    """Where a submitted curve training writes its checkpoints: an absolute folder the cluster writes."""
    url = str(out or spec.output or f"runs/{spec.name}")
    if "://" in url:
        raise ResultError(f"--out {url!r}: curve checkpoints are files in a folder; give an absolute path on storage "
                          "the cluster writes and you can read (a shared file system)")
    return remote_output(url, spec)


def submit(args: argparse.Namespace) -> int:
    from ..specs import load_any_spec

    spec_path = Path(args.spec)
    spec = load_any_spec(spec_path)
    args.kind = _job_kind(spec, args)
    url = curve_output(args.out, spec) if args.kind == "curve" else remote_output(args.out, spec)
    check_checkpoints(spec_path, spec, args.remote_checkpoints)
    env = job_env(args.env)
    _, elsewhere = factory_sources(spec)
    jobs = Jobs(args.address)  # an unreachable cluster fails before anything is copied
    with tempfile.TemporaryDirectory(prefix="landscape-job-") as tmp:
        bundle = build_bundle(spec_path, spec, Path(tmp), args.remote_checkpoints)
        size = bundle.size
        if size >= MAX_UPLOAD:
            raise ClusterError(
                f"the job would upload {size / 2**20:.0f} MiB (code, spec, checkpoints); Ray jobs carry less than "
                f"{MAX_UPLOAD / 2**20:.0f} MiB: put the checkpoints on storage the cluster reads, name them by "
                "absolute path and pass --remote-checkpoints"
            )
        shipped = ", ".join(bundle.checkpoints + bundle.modules) or "no checkpoints"
        say(f"uploading code, spec and {shipped} ({size / 2**20:.1f} MiB) to {jobs.url}")
        for top in elsewhere:
            say(f"note: factory module {top!r} is not under the current directory; it must be importable on the cluster")
        job_id = jobs.submit(
            entrypoint=entrypoint(bundle.spec_file, url, args),
            submission_id=new_job_id(spec.name),
            runtime_env={"working_dir": str(bundle.root), "env_vars": env},
            metadata={OUTPUT_KEY: url, NAME_KEY: spec.name, SPEC_KEY: str(spec_path.resolve()), KIND_KEY: args.kind,
                      "job_name": spec.name},  # the dashboard's name for the job
        )
    print(f"job: {job_id}")
    print(f"result: {url}")
    a = _addr_flag(args)
    if args.kind == "curve":
        say(f"submitted curve training {spec.name!r} ({args.workers or spec.cluster.workers} Ray Train worker(s)) to {jobs.url}; "
            "follow it with")
        say(f"  landscape status {job_id}{a}\n  landscape logs {job_id} --follow{a}\n  landscape stop {job_id}{a}")
        return _follow(jobs, job_id, url, a) if args.wait else 0
    grid = "x".join(str(n) for n in spec.grid_shape[::-1])  # columns x rows, as the spec's grid.x, grid.y
    say(f"submitted scan {spec.name!r} (grid {grid}) to {jobs.url}; follow it with")
    say(f"  landscape status {job_id}{a}\n  landscape logs {job_id} --follow{a}\n  landscape stop {job_id}{a}")
    say(f"and copy the result here with `landscape fetch {job_id}{a} -o {spec.name}.zarr`")
    if not args.wait:
        return 0
    return _follow(jobs, job_id, url, a)


def _follow(jobs: Jobs, job_id: str, url: str, a: str) -> int:
    """Stream the job's log until it ends: 0 if it succeeded, 1 otherwise."""
    try:
        jobs.tail(job_id)
        info = jobs.wait_done(job_id)
    except KeyboardInterrupt:
        say(f"landscape: stopped following; job {job_id} keeps running (`landscape stop {job_id}{a}` stops it)")
        return 130
    state = state_of(info)
    if state == "SUCCEEDED":
        say(f"job {job_id} SUCCEEDED; result: {url}")
        return 0
    say(f"landscape: error: job {job_id} {state}: {_why_failed(jobs, job_id, info)} (the whole log: `landscape logs {job_id}{a}`)")
    return 1


def _landscape_error(jobs: Jobs, job_id: str) -> str | None:
    """The driver's own one-line error (`landscape: error: ...`) from the job's log, if it printed one."""
    try:
        lines = jobs.logs(job_id).splitlines()
    except ClusterError:
        return None
    mine = [ln for ln in lines if ln.startswith("landscape: ")]
    return mine[-1].removeprefix("landscape: error: ").removeprefix("landscape: ") if mine else None


def _why_failed(jobs: Jobs, job_id: str, info) -> str:
    """Why a job failed, one whole line: the driver's (or the bootstrap's) own error, else the last line of Ray's
    message (its first line only says that the entrypoint failed and that the log's tail follows)."""
    lines = [ln.strip() for ln in (info.message or "").splitlines() if ln.strip()]
    return _landscape_error(jobs, job_id) or (lines[-1] if lines else "no message")


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="seconds")


def progress_lines(url: str, width: int = 30) -> list[str]:
    """A bar from the result's tile_done array and the result's own status (and writer), or why there is none (yet)."""
    import numpy as np

    from cluster.lease import describe_holder
    from cluster.leasing import read_lease

    from cluster.progress import every_nth

    from ..plot.relative_se import largest_relative_se
    from cluster.store import ResultStore

    try:
        store = ResultStore.open(url)
        done = store.done_mask()
    except ResultError as e:
        return [f"progress: none to show: {e}"]
    n, total = int(done.sum()), int(done.size)
    filled = width * n // max(total, 1)
    meta = store.meta
    status = meta.get("status", "?") + (f" ({meta['error']})" if meta.get("error") else "")
    holder = read_lease(url)
    if meta.get("status") == "running" and (not holder or writer_gone(holder)):
        status += " (no live writer: the run was killed; run it again to resume)"
    lines = [f"progress: [{'#' * filled}{'.' * (width - filled)}] {n}/{total} tiles ({100 * n // max(total, 1)}%)",
             f"result status: {status}"]
    if meta.get("preview") and "preview_done" in store.group:
        passes = np.asarray(store.group["preview_done"][...]).reshape(len(meta["preview"]), -1)
        lines.append("preview: " + ", ".join(
            f"{every_nth(s) if s > 1 else 'the rest'} {100 * int(p.sum()) // p.size}%" for s, p in zip(meta["preview"], passes)
        ))
    try:
        lines += largest_relative_se(store.group, store.metric_names)
    except Exception as e:  # an array unreadable mid-write: the progress above still stands
        lines.append(f"relative SE: not readable now ({type(e).__name__})")
    if holder and not writer_gone(holder):
        lines.append(f"written by: {describe_holder(holder)}")
    from ..common.provenance import summary_line

    lines.append(summary_line(meta))
    from ..scan.run import hessian_line

    hess = hessian_line(store)
    if hess:
        lines.append(hess)
    return lines


def writer_gone(holder: dict) -> bool:
    """A lease left by a process of this host that no longer exists (other hosts: unknown, so not gone)."""
    import socket

    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _names_a_result(ref: str) -> bool:
    """A result on disk or in object storage (s3://...), not a job id: `status` reads it without Ray."""
    return ("://" in ref and not ref.startswith(("http://", "https://"))) or Path(ref).exists()


def result_status(url: str) -> int:
    """`landscape status RESULT`: a result's progress, status and provenance, read from the result alone."""
    from cluster.store import ResultStore

    ResultStore.open(url)  # not a result: one line (ResultError), exit 2
    print(f"result: {url}")
    for line in progress_lines(url):
        print(line)
    return 0


def status(args: argparse.Namespace) -> int:
    if _names_a_result(args.id):
        return result_status(args.id)
    jobs = Jobs(args.address)
    info = jobs.info(args.id)
    meta = info.metadata or {}
    state = state_of(info)
    print(f"job: {args.id}")
    if state == "FAILED":  # Ray's message starts "Job entrypoint command failed ... logs (truncated ...):"
        print(f"state: {state}")
        print(f"error: {_why_failed(jobs, args.id, info)}")
    else:
        print(f"state: {state} ({first_line(info.message or '') or 'no message'})")
    print(f"started: {_when(info.start_time)}  ended: {_when(info.end_time)}")
    url = meta.get(OUTPUT_KEY)
    if url is None:
        print("not a landscape scan (no result recorded in its metadata)")
        return 0
    if meta.get(KIND_KEY) == "curve":
        folder = Path(url)
        done = len(list(folder.glob("epoch_*.pt"))) if folder.is_dir() else 0
        print(f"curve training: {meta.get(NAME_KEY, '?')}")
        print(f"checkpoints: {url} ({done} epoch(s) written{'' if folder.is_dir() else '; the folder is not visible here'})")
        return 0
    print(f"scan: {meta.get(NAME_KEY, '?')}")
    print(f"result: {url}")
    for line in progress_lines(url):
        print(line)
    if state == "FAILED":
        say(f"the driver's output: `landscape logs {args.id}{_addr_flag(args)}`")
    return 0


def logs(args: argparse.Namespace) -> int:
    jobs = Jobs(args.address)
    if not args.follow:
        sys.stdout.write(jobs.logs(args.id))
        return 0
    try:
        jobs.tail(args.id)
    except KeyboardInterrupt:
        say(f"landscape: stopped following; job {args.id} keeps running")
        return 130
    return 0


def stop(args: argparse.Namespace) -> int:
    jobs = Jobs(args.address)
    url = (jobs.info(args.id).metadata or {}).get(OUTPUT_KEY)
    if not jobs.stop(args.id):
        print(f"job {args.id} is already {state_of(jobs.info(args.id))}; nothing to stop")
        return 0
    info = jobs.wait_done(args.id, timeout_s=30)
    print(f"job {args.id}: {state_of(info)}")
    if url:
        print(f"result: {url} (keeps its finished tiles; submitting the same spec with --out {url} resumes it)")
    return 0


def list_jobs(args: argparse.Namespace) -> int:
    jobs = Jobs(args.address)
    rows = [
        (j.submission_id or j.job_id or "?", state_of(j), j.metadata.get(NAME_KEY, "?"), j.metadata[OUTPUT_KEY])
        for j in sorted(jobs.list(), key=lambda j: j.start_time or 0)
        if OUTPUT_KEY in (j.metadata or {})
    ]
    if not rows:
        print(f"no landscape scans on {jobs.url}")
        return 0
    header = ("ID", "STATE", "NAME", "RESULT")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
    return 0


def add_parsers(sub) -> None:
    """The subcommands of this module, on the CLI's subparsers."""
    from ..common.flags import nonneg_float, positive_int

    addr = dict(help="the Ray dashboard, e.g. http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS or $RAY_ADDRESS)")
    s = sub.add_parser("submit", help="run a scan (or a curve training) as a Ray job on a cluster; prints the job id")
    s.add_argument("spec")
    s.add_argument("--address", **addr)
    s.add_argument("--out", help="absolute path on storage the cluster writes, or a URL such as s3://... (default: spec.output)")
    s.add_argument("--wait", action="store_true", help="stream the job's log until it ends; exit 1 if it failed")
    s.add_argument("--actors", type=positive_int)
    s.add_argument("--gpus-per-actor", type=nonneg_float)
    s.add_argument("--workers", type=positive_int, help="curve training: data-parallel Ray Train workers (default 1)")
    s.add_argument("--gpus-per-worker", type=nonneg_float, help="curve training: GPUs per worker (default: the spec's)")
    s.add_argument("--overwrite", action="store_true", help="replace a different scan at --out")
    s.add_argument(
        "--remote-checkpoints", action="store_true", help="the spec's checkpoint paths are files on the cluster: do not upload them"
    )
    s.add_argument(
        "--python", metavar="PATH", default=DEFAULT_PYTHON,
        help="the head's interpreter that has landscape's libraries installed (default: `python` on the head's PATH, "
        "as deploy/local-cluster.sh sets it); the job checks it first and fails with one line if it lacks one",
    )
    s.add_argument(
        "--env", action="append", default=[], metavar="NAME[=VALUE]",
        help="an environment variable for the job (copied from here without =VALUE), e.g. AWS_ENDPOINT_URL; "
        "the job's runtime env shows it on the dashboard, so prefer credentials the cluster already has",
    )
    s.set_defaults(run=submit)
    for name, text, fn, what in [
        ("status", "state and progress of a submitted scan, or of a result (a path or s3:// URL; no cluster needed)",
         status, "the job id `landscape submit` printed, or a result's path or URL"),
        ("stop", "stop a submitted scan (its result keeps the finished tiles)", stop, "the job id `landscape submit` printed"),
    ]:
        p = sub.add_parser(name, help=text)
        p.add_argument("id", help=what)
        p.add_argument("--address", **addr)
        p.set_defaults(run=fn)
    lg = sub.add_parser("logs", help="the output of a submitted scan's driver")
    lg.add_argument("id")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    lg.add_argument("--address", **addr)
    lg.set_defaults(run=logs)
    ls = sub.add_parser("list", help="the landscape scans on a cluster: id, state, name, result")
    ls.add_argument("--address", **addr)
    ls.set_defaults(run=list_jobs)
