"""The wheels the GPU check installs offline: prepared here, carried to the device machine in batches.

The device tool carries at most 64 MiB per call and Ray's wheel is larger, so
`prepare` (on a machine with registry access) downloads the project's non-torch
dependencies for Python 3.12 / manylinux x86-64, drops what the device image
already has, splits Ray's wheel into 45 MiB parts (as `split -b 45M` does) and
packs everything into folders `batch-1`, `batch-2`, ... of at most 56 MiB, each
with the same MANIFEST.json (every file's size and SHA-256, and how the parts
make the wheel). On the device, each call runs `gather`, which copies a carried
batch into a stash under /tmp that outlives the call (not the machine), and
`install` once the stash holds everything: the wheel is reassembled, checked and
installed with `pip install --no-index --find-links`. Standard library only: it
runs before any dependency is there.

    python benchmarks/gpu_wheels.py prepare --out benchmarks/wheels
    python benchmarks/gpu_wheels.py gather --from benchmarks/wheels/batch-1
    python benchmarks/gpu_wheels.py install --from benchmarks/wheels/batch-2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STASH = Path("/tmp/landscape-wheels")
PART_BYTES = 45 << 20  # split -b 45M
BATCH_BYTES = 56 << 20  # the device tool carries 64 MiB per call, the working tree (~1.5 MiB) included
PLATFORMS = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_27_x86_64", "manylinux_2_28_x86_64"]
# The device image's packages (KINDS.md, 'Python packages already there'): not carried.
ON_DEVICE = {
    "torch", "torchvision", "numpy", "scipy", "scikit-learn", "matplotlib", "pillow", "pyyaml", "fsspec", "packaging",
    "filelock", "click", "msgpack", "protobuf", "requests", "urllib3", "idna", "certifi", "charset-normalizer",
    "typing-extensions", "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing", "python-dateutil", "six",
    "joblib", "threadpoolctl", "aiohttp", "aiosignal", "attrs", "frozenlist", "multidict", "yarl", "propcache",
    "aiohappyeyeballs", "grpcio", "prometheus-client", "psutil", "jinja2", "markupsafe", "networkx", "sympy",
    "mpmath", "triton", "setuptools", "wheel", "pip", "xarray", "pandas", "tzdata", "pytz", "rich", "pygments",
    "markdown-it-py", "mdurl", "pytest", "pluggy", "iniconfig", "wrapt", "cloudpickle", "h11", "anyio", "httpx",
    "httpcore", "sniffio", "platformdirs", "zipp", "importlib-metadata", "tqdm", "cuda-bindings", "cuda-pathfinder",
}
TORCH_FAMILY = {"torch", "torchvision"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_project(filename: str) -> str:
    return canonical(filename.split("-", 1)[0])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def requirements() -> list[str]:
    """The project's dependencies but torch's family, pinned to the versions installed here when they are."""
    from importlib import metadata

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        name = re.match(r"[A-Za-z0-9_.-]+", dep)[0]
        if canonical(name) in TORCH_FAMILY:
            continue
        extras = re.match(r"[A-Za-z0-9_.-]+(\[[^\]]*\])?", dep)[1] or ""
        try:
            out.append(f"{name}{extras}=={metadata.version(name)}")  # what the tests here ran with
        except metadata.PackageNotFoundError:
            out.append(dep)
    return out


def split_file(path: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """`split -b` of `path` into path.part-aa, -ab, ... (the original is removed)."""
    parts = []
    with open(path, "rb") as f:
        for i, chunk in enumerate(iter(lambda: f.read(part_bytes), b"")):
            part = path.with_name(f"{path.name}.part-a{chr(ord('a') + i)}")
            part.write_bytes(chunk)
            parts.append(part)
    path.unlink()
    return parts


def pack(files: list[Path], limit: int = BATCH_BYTES) -> list[list[Path]]:
    """First-fit decreasing into batches of at most `limit` bytes."""
    batches: list[list[Path]] = []
    sizes: list[int] = []
    for f in sorted(files, key=lambda p: -p.stat().st_size):
        n = f.stat().st_size
        i = next((i for i, s in enumerate(sizes) if s + n <= limit), None)
        if i is None:
            batches.append([]), sizes.append(0)
            i = len(batches) - 1
        batches[i].append(f)
        sizes[i] += n
    return batches


def prepare(out: Path, have: set[str], python_version: str = "3.12", part_bytes: int = PART_BYTES) -> list[Path]:
    """Download, drop what the device has, split what is too large, pack into batches; returns the batches."""
    download = out / "download"
    shutil.rmtree(out, ignore_errors=True)
    download.mkdir(parents=True)
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--dest", str(download), "--only-binary=:all:",
         "--python-version", python_version, "--implementation", "cp", *platforms, *requirements()],
        check=True,
    )
    wheels = {}
    for w in sorted(download.glob("*.whl")):
        if wheel_project(w.name) in have:
            w.unlink()
        else:
            wheels[w.name] = {"sha256": sha256(w), "bytes": w.stat().st_size}
    for w in list(download.glob("*.whl")):
        if w.stat().st_size > part_bytes:
            parts = split_file(w, part_bytes)
            wheels[w.name]["parts"] = [p.name for p in parts]
    manifest = {"wheels": wheels, "python": python_version, "platforms": PLATFORMS}
    batches = []
    for i, files in enumerate(pack(sorted(download.iterdir())), 1):
        batch = out / f"batch-{i}"
        batch.mkdir()
        for f in files:
            f.rename(batch / f.name)
        (batch / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))
        batches.append(batch)
    download.rmdir()
    return batches


def gather(sources: list[Path], stash: Path = STASH) -> None:
    """Copy the carried batch(es) into the stash, which outlives this call on a warm machine."""
    stash.mkdir(parents=True, exist_ok=True)
    for src in sources:
        for f in sorted(Path(src).glob("*")):
            if f.is_file() and not (stash / f.name).exists() or f.name == "MANIFEST.json":
                shutil.copy2(f, stash / f.name)


def missing(stash: Path = STASH) -> list[str]:
    """Files the manifest names that the stash lacks (a wheel counts as there when it or all its parts are)."""
    if not (stash / "MANIFEST.json").exists():
        return ["MANIFEST.json"]
    wheels = json.loads((stash / "MANIFEST.json").read_text())["wheels"]
    lost = []
    for name, w in wheels.items():
        if (stash / name).exists():
            continue
        lost += [p for p in w.get("parts", [name]) if not (stash / p).exists()]
    return lost


def assemble(stash: Path = STASH) -> list[Path]:
    """Rejoin split wheels and check every wheel's SHA-256; returns the wheels. ValueError on a bad one."""
    wheels = json.loads((stash / "MANIFEST.json").read_text())["wheels"]
    out = []
    for name, w in wheels.items():
        path = stash / name
        if not path.exists():
            with open(path.with_suffix(".partial"), "wb") as f:
                for part in w["parts"]:
                    f.write((stash / part).read_bytes())
            path.with_suffix(".partial").rename(path)
        if sha256(path) != w["sha256"]:
            path.unlink()
            raise ValueError(f"{name}: SHA-256 differs from the manifest's; carry its parts again")
        out.append(path)
    return out


def install(stash: Path = STASH, python: str = sys.executable, repo: Path = REPO) -> None:
    """The project, editable, and its wheels, from the stash only; what the interpreter has stays."""
    assemble(stash)
    subprocess.run(
        [python, "-m", "pip", "install", "--no-index", "--find-links", str(stash), "--no-build-isolation",
         "--disable-pip-version-check", "-q", "-e", str(repo)],
        check=True,
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("prepare", help="download and pack the wheels (needs the package registry)")
    pr.add_argument("--out", type=Path, default=REPO / "benchmarks" / "wheels")
    pr.add_argument("--python-version", default="3.12")
    pr.add_argument("--keep", default="", help="comma-separated projects to carry even if the device has them")
    for name in ("gather", "install"):
        s = sub.add_parser(name)
        s.add_argument("--from", dest="sources", type=Path, action="append", default=[])
        s.add_argument("--stash", type=Path, default=STASH)
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        have = ON_DEVICE - {canonical(k) for k in args.keep.split(",") if k}
        for batch in prepare(args.out, have, args.python_version):
            size = sum(f.stat().st_size for f in batch.iterdir()) / 2**20
            print(f"{batch}: {len(list(batch.iterdir()))} files, {size:.1f} MiB")
        return 0
    gather(args.sources, args.stash)
    lost = missing(args.stash)
    if lost:
        print(f"the stash {args.stash} still lacks {', '.join(lost)}: carry the other batch in the next call", file=sys.stderr)
        return 3
    if args.cmd == "install":
        install(args.stash)
    return 0


if __name__ == "__main__":
    sys.exit(main())
