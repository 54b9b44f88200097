"""What a submitted scan carries to the cluster: code, spec, checkpoints, factory modules.

A temporary folder becomes the job's runtime-env `working_dir`: this package's
code (so the job runs the client's version), the spec with its checkpoint paths
rewritten to uploaded copies (content-hashed, so resubmitting the same spec
keeps its identity), and the module of a `kind: import` factory when it lives
under the current directory.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import secrets
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from landscape.errors import ClusterError, ResultError, SpecError

PACKAGES = ("landscape", "cluster", "jobs")  # shipped with every job
MAX_UPLOAD = 400 * 2**20  # Ray refuses runtime-env packages of 512 MiB (its gRPC message limit) or more
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv", "results", "runs", "*.zarr")


def remote_output(out: str | None, spec) -> str:
    """Where the driver on the cluster writes; relative paths would die with the job's temporary dir."""
    url = str(out or spec.output or f"results/{spec.name}.zarr")  # `landscape run`'s default
    if "://" in url or Path(url).is_absolute():
        return url
    raise ResultError(
        f"output {url!r} is a relative path: on the cluster it would land in the job's temporary working "
        "directory and be deleted with it; pass --out with an absolute path on storage the cluster's head "
        "node writes and you can read (a shared file system), or an s3:// URL"
    )


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def factory_sources(spec) -> tuple[list[Path], list[str]]:
    """Local modules of `kind: import` factories (found as `landscape run` finds them, from the
    current directory), and the names of those that must already be importable on the cluster."""
    local, elsewhere = [], []
    for factory in (spec.model.factory, getattr(spec.data, "factory", None)):
        if not factory:
            continue
        top = factory.split(":")[0].split(".")[0]
        if top in PACKAGES:
            continue
        found = [p for p in (Path.cwd() / top, Path.cwd() / f"{top}.py") if p.exists()]
        if found:
            local.extend(found)
        else:
            elsewhere.append(top)
    return sorted(set(local)), sorted(set(elsewhere))


def _package_dir(name: str) -> Path:
    # find_spec does not import the package (landscape would import torch).
    return Path(importlib.util.find_spec(name).submodule_search_locations[0])


def _copy(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, ignore=_IGNORE)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)


@dataclass
class Bundle:
    """The job's working_dir: code, the rewritten spec, and the inputs copied into it."""

    root: Path
    spec_file: str = "spec.yaml"
    checkpoints: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


def check_checkpoints(spec_path: Path, spec, remote_checkpoints: bool) -> list[Path]:
    """The checkpoints to upload (none with --remote-checkpoints); SpecError if one cannot be found."""
    from ..specs.inputs import input_files  # the files a job ships (jobs.specs: imported when a command needs it)

    paths = [p for _, group, _ in input_files(spec, local=not remote_checkpoints) for p in group]
    if remote_checkpoints:
        relative = [str(p) for p in paths if not p.is_absolute()]
        if relative:
            raise SpecError(
                f"{spec_path}: with --remote-checkpoints, checkpoint paths name files on the cluster and must "
                f"be absolute; got {', '.join(relative)}"
            )
        return []
    for p in paths:
        if not p.is_file():
            raise SpecError(
                f"{spec_path}: checkpoint {str(p)!r} does not exist here (relative paths are read from the "
                "current directory); pass --remote-checkpoints if the spec names files on the cluster"
            )
    return paths


def build_bundle(spec_path: Path, spec, root: Path, remote_checkpoints: bool) -> Bundle:
    """Fill `root` with what the job needs; SpecError if a checkpoint cannot be found."""
    import yaml

    from ..common.source import checkout_source
    from ..specs import ScanSpec, submitted_record, validate
    from ..specs.inputs import input_files

    uploads = check_checkpoints(spec_path, spec, remote_checkpoints)
    raw = yaml.safe_load(spec_path.read_text())  # already validated: a mapping
    bundle = Bundle(root)
    staged_from: dict[str, str] = {}  # uploaded copy -> the file as the spec named it (provenance records both)
    for name in PACKAGES:
        _copy(_package_dir(name), root / name)
    if uploads:
        for keys, group, one in input_files(spec):
            staged = []
            for p in group:
                # A folder per content hash: same-named files never collide, and the file keeps
                # its name (plots label checkpoints by it).
                rel = Path("checkpoints") / _sha(p) / p.name
                _copy(p, root / rel)
                staged.append(rel.as_posix())
                staged_from[rel.as_posix()] = str(p)
            where = raw
            for k in keys[:-1]:
                where = where[k]
            where[keys[-1]] = staged[0] if one else staged
        bundle.checkpoints = [str(p) for p in uploads]
    local, _ = factory_sources(spec)
    for src in local:
        _copy(src, root / src.name)
        bundle.modules.append(src.name)
    (root / bundle.spec_file).write_text(yaml.safe_dump(raw, sort_keys=False))
    # What only this side knows: the identity of the spec as written (the copy names the uploaded files, which
    # would change a scan's identity), and the commit of this checkout (the job's copy has no .git).
    record = {"landscape": checkout_source(), "inputs": staged_from}
    if isinstance(spec, ScanSpec):
        # copy_identity: the copy's own, so that a copy edited later (or taken elsewhere) stops using `identity`
        record["identity"], record["copy_identity"] = spec.identity(), validate(ScanSpec, raw, bundle.spec_file).identity()
    submitted_record(root / bundle.spec_file).write_text(json.dumps(record, indent=1))
    return bundle


def entrypoint(spec_file: str, url: str, args: argparse.Namespace) -> str:
    """The command the job runs on the head; `--address auto` joins the job's own cluster. It starts with the
    bootstrap (bootstrap.py) under --python: a Python that lacks a library fails with one line."""
    from .bootstrap import command

    launch = command(getattr(args, "python", None))
    if getattr(args, "kind", "scan") == "curve":  # curve training: Ray Train workers
        argv = [*launch, "train-curve", spec_file, "--out", url, "--address", "auto"]
        if args.workers:  # else the spec's cluster.workers
            argv += ["--workers", str(args.workers)]
        if args.gpus_per_worker is not None:
            argv += ["--gpus-per-worker", f"{args.gpus_per_worker:g}"]
        return shlex.join(argv + (["--overwrite"] if args.overwrite else []))
    argv = [*launch, "run", spec_file, "--out", url, "--address", "auto", "--no-plot"]
    if args.actors:
        argv += ["--actors", str(args.actors)]
    if args.gpus_per_actor is not None:
        argv += ["--gpus-per-actor", f"{args.gpus_per_actor:g}"]
    if args.overwrite:
        argv.append("--overwrite")
    return shlex.join(argv)


def job_env(items: list[str]) -> dict[str, str]:
    """--env NAME (copied from here) or NAME=VALUE, for the job's processes."""
    env = {"PYTHONUNBUFFERED": "1"}  # the log shows progress as it happens
    for item in items:
        name, eq, value = item.partition("=")
        if not eq:
            if name not in os.environ:
                raise ClusterError(f"--env {name}: no such variable here; set it or give --env {name}=VALUE")
            value = os.environ[name]
        env[name] = value
    return env


def new_job_id(name: str) -> str:
    return f"landscape-{name}-{secrets.token_hex(4)}"
