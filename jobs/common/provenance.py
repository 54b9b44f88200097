"""Provenance of a result: the code, the libraries and the files its numbers came from.

Every result kind records one dict under the key `provenance` (Zarr attrs through
ResultWriter, or the run record of a run folder), built here by `provenance()`:

- landscape's version and git commit (of the checkout it runs from; in a submitted
  job's copy without .git, the commit `landscape submit` recorded on the submitting side),
- the SHA-256 of every checkpoint and data file read (landscape.checkpoints.file_sha256:
  streamed, once per file per process),
- the versions of the libraries that change numbers (python, torch, numpy always; the
  others when this run imported them), the device and the precision.

None of it enters a result's identity (jobs/specs/base.py): a resume compares it instead
(cluster/provenance.py: a changed input file is refused, other changes are a warning).
"""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path
from typing import Iterable

from .source import checkout_source

# distribution name -> module: the libraries whose versions can change a result's numbers
NUMERIC_LIBRARIES = {"torch": "torch", "numpy": "numpy", "torchvision": "torchvision", "scikit-learn": "sklearn",
                     "scipy": "scipy", "Pillow": "PIL", "transformers": "transformers", "tokenizers": "tokenizers"}
ALWAYS = ("torch", "numpy")  # every run computes with these; the others count when a run imported them


def library_versions() -> dict[str, str]:
    """python, torch and numpy, and each other numeric library this process imported (its module's __version__)."""
    out = {"python": platform.python_version()}
    for dist, module in NUMERIC_LIBRARIES.items():
        if dist in ALWAYS:
            __import__(module)
        mod = sys.modules.get(module)
        if mod is not None:
            out[dist] = str(getattr(mod, "__version__", "unknown"))
    return out


def source(submitted: dict | None = None) -> dict:
    """checkout_source(), or where this copy has no .git, the commit the submitting side recorded (`submitted`)."""
    here = checkout_source()
    sent = (submitted or {}).get("landscape") or {}
    if here["commit"] is None and sent.get("commit"):
        return {**here, "commit": sent["commit"], "dirty": sent.get("dirty"), "commit_from": "submitting side"}
    return dict(here)


def file_sha256(path: str | Path) -> str:
    from landscape.checkpoints import file_sha256 as sha  # torch: only where files are hashed (the CLI starts fast)

    return sha(path)


def hashed(role: str, path: str | Path) -> dict:
    """A file's entry; a folder (a tokenizer, a save_pretrained model) as one digest over its files."""
    p = Path(path)
    if p.is_dir():
        return _folder_entry(role, p, sorted(f for f in p.rglob("*") if f.is_file()))
    return {"role": role, "path": str(path), "sha256": file_sha256(path)}


def _folder_entry(role: str, base: Path, files: list[Path]) -> dict:
    """Many files (an image folder) as one entry: the SHA-256 over each file's relative path and SHA-256."""
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.relative_to(base).as_posix()}\0{file_sha256(p)}\n".encode())
    return {"role": role, "path": str(base), "files": len(files), "sha256": h.hexdigest()}


def data_files(role: str, data) -> list[dict]:
    """Hashed entries of the files a data spec reads from disk (none for built-in, synthetic or imported data)."""
    from landscape.readers import files_read

    from ..specs.datasets import FILE_DATA_KINDS

    if data is None:
        return []
    if data.kind in FILE_DATA_KINDS:
        base, files = files_read(data.kind, data.root, getattr(data, "split", None))
        if data.kind == "image_folder":
            return [_folder_entry(role, base, files)]
        return [hashed(role, p) for p in files]
    files = [getattr(data, "path", None), getattr(data, "tokenizer", None)]  # text: a corpus or token file, a tokenizer
    return [hashed(f"{role}.{k}", f) for k, f in zip(("path", "tokenizer"), files) if f is not None and Path(f).exists()]


def provenance(*, checkpoints: Iterable[tuple[str, str | Path]] = (), data: Iterable[tuple[str, object]] = (),
               device: str, precision: str, spec=None, model=None, results: Iterable[dict] = ()) -> dict:
    """The provenance dict of one run: `checkpoints` (role, path) and `data` (role, data spec) are hashed, and
    a model's save_pretrained folder (`model`, default the spec's); `results` are other results read ({"role",
    "path", "identity"}); `spec` a loaded spec (for what `landscape submit` recorded about the submitting side)."""
    submitted = getattr(spec, "submitted", None) if spec is not None else None
    model = model if model is not None else getattr(spec, "model", None)
    folder = getattr(model, "path", None)  # hf_causal_lm: its weights and config
    files = [hashed(role, p) for role, p in [*checkpoints, *([("model.path", folder)] if folder is not None else [])]]
    staged = (submitted or {}).get("inputs") or {}
    for entry in files:  # a submitted job reads uploaded copies: say which file each was where it was submitted
        if entry["path"] in staged:
            entry["submitted_path"] = staged[entry["path"]]
    return {
        "landscape": source(submitted),
        "libraries": library_versions(),
        "checkpoints": files,
        "data_files": [e for role, d in data for e in data_files(role, d)],
        "results": list(results),
        "device": device,
        "precision": precision,
    }


def actor_device(gpus_per_actor: float | None) -> str:
    """The device of jobs that compute on actors (the devices each actor used are in the result's `devices`)."""
    return "cuda (actors)" if gpus_per_actor else "cpu (actors)"


def point_provenance(spec, point, device) -> dict:
    """Provenance of a job at one point (hessian, sharpness): the checkpoint `at`, or the scan result read."""
    at = spec.at
    ckpts = [("at.checkpoint", at.checkpoint)] if at.checkpoint is not None else []
    results = [{"role": "at.result", "path": str(at.result), "identity": point.result_identity}] if at.result is not None else []
    return provenance(checkpoints=ckpts, data=[("data", point.data)], device=str(device), precision=spec.precision,
                      spec=spec, model=point.model, results=results)


def spec_inputs(spec) -> list[tuple[str, Path]]:
    """(role, path) of every checkpoint a scan or curve-training spec reads: the files `landscape submit` ships."""
    from ..specs.inputs import input_files

    return [(".".join(keys), p) for keys, group, _ in input_files(spec) for p in group]


def scan_data(spec) -> list[tuple[str, object]]:
    """(role, data spec) of a scan: its data and each other split it evaluates on or re-estimates BatchNorm from."""
    names = list(dict.fromkeys([*(spec.eval or [])[1:], *([spec.batchnorm_data] if spec.batchnorm_data else [])]))
    return [("data", spec.data)] + [(f"data[{n}]", spec.split_data(n)) for n in names]


def summary_line(meta: dict) -> str:
    """`provenance: ...` in one line for `landscape status` (results made before it was recorded: 'not recorded')."""
    p = meta.get("provenance")
    if not isinstance(p, dict):
        return "provenance: not recorded (a result written before landscape recorded it)"
    src = p.get("landscape") or {}
    commit = src.get("commit")
    code = f"landscape {src.get('version', '?')} ({commit[:12] + (' dirty' if src.get('dirty') else '') if commit else 'commit unknown'})"
    libs = ", ".join(f"{k} {v}" for k, v in (p.get("libraries") or {}).items())
    files = len(p.get("checkpoints") or []) + len(p.get("data_files") or [])
    resumes = len(p.get("resumes") or [])
    more = f"; resumed {resumes}x with other versions" if resumes else ""
    return f"provenance: {code}; {libs}; {files} input file(s) hashed; {p.get('device')}, {p.get('precision')}{more}"
