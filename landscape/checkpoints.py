"""Loading and saving checkpoints safely (weights_only=True), with clear errors."""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError

_EXPECTED = "a state_dict saved with torch.save(model.state_dict(), path)"


def _what_it_is(path: Path) -> str | None:
    """What an unreadable file looks like, from its first bytes (None: looks like a checkpoint)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "is empty (0 bytes)"
    if head.startswith(b"PK"):
        return None if zipfile.is_zipfile(path) else "is truncated or corrupt (an incomplete torch.save archive)"
    if head.startswith(b"\x80"):  # a legacy (pre-1.6) pickle checkpoint
        return None
    try:
        head.decode("utf-8")
        return "is a text file, not a PyTorch checkpoint"
    except UnicodeDecodeError:
        return "is not a PyTorch checkpoint (unknown binary format)"


def read_checkpoint(path: str | Path, what: str = "checkpoint") -> object:
    """torch.load(path, weights_only=True), with one-line CheckpointErrors saying what the file is."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{what} {str(path)!r} is a directory; give the checkpoint file inside it")
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} does not exist; train one with `landscape train` or fix the path")
    try:
        oddity = _what_it_is(path)
    except OSError as e:
        raise CheckpointError(f"cannot read {what} {str(path)!r}: {e.strerror or e}") from None
    if oddity:
        raise CheckpointError(f"{what} {str(path)!r} {oddity}; expected {_EXPECTED}")
    try:
        with warnings.catch_warnings():  # torch's own remarks on odd files: our error says what the file is
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused a Python object (a whole pickled model, say)
        raise CheckpointError(
            f"{what} {str(path)!r} holds Python objects that safe loading (weights_only) refuses, e.g. a whole pickled "
            f"model; expected {_EXPECTED}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, ImportError) as e:
        raise CheckpointError(
            f"{what} {str(path)!r} is truncated or corrupt ({type(e).__name__}); expected {_EXPECTED}"
        ) from None


# A curve checkpoint (`landscape train-curve`) is a dict marked by this key (its format version):
# {"landscape_curve": 1, "kind", "theta": state_dict, "endpoints": [{"path", "sha256"}, ...], "epoch", ...}: one bend,
# fixed endpoints; format 2 (several bends or trained endpoints): "theta" a list of the k bends' state_dicts and
# "trained_endpoints" [state_dict or None, state_dict or None] (w1, w2 as trained; None: the file in "endpoints").
CURVE_MARK = "landscape_curve"
CURVE_FORMAT = 1
CURVE_FORMATS = (1, 2)
_CURVE_EXPECTED = "a curve checkpoint written by `landscape train-curve` (runs/<name>/epoch_NNN.pt)"


def is_curve_checkpoint(obj: object) -> bool:
    return isinstance(obj, dict) and CURVE_MARK in obj


def state_dict_of(obj: object, path: Path, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state_dict in a loaded checkpoint (also under 'state_dict', 'model', 'model_state_dict' or 'model_state')."""
    if is_curve_checkpoint(obj):
        raise CheckpointError(
            f"{what} {str(path)!r} is a curve checkpoint (the bend of a {obj.get('kind', '?')} curve from "
            "`landscape train-curve`), not a model's state_dict; give it as slice.curve of a curve or curve_plane scan"
        )
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model", "model_state_dict", "model_state"):  # model_state: dnn-mode-connectivity
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        got = type(obj).__name__ if not isinstance(obj, dict) else ("an empty dict" if not obj else "a dict of other things")
        raise CheckpointError(f"{what} {str(path)!r} holds {got}, not a state_dict of tensors; expected {_EXPECTED}")
    return obj


def load_state(path: str | Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """A state_dict from `path`, checked against `model` (keys and shapes)."""
    path = Path(path)
    return fit_state(state_dict_of(read_checkpoint(path), path), model, path)


def fit_state(obj: dict[str, torch.Tensor], model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """A loaded state_dict checked against `model` (keys and shapes), in the model's dtypes; `path` names it in errors."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in obj]
    unexpected = [k for k in obj if k not in expected]
    wrong = [f"{k} {tuple(obj[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if k in obj and obj[k].shape != v.shape]
    if missing or unexpected or wrong:
        bits = []
        if missing:
            bits.append(f"missing {missing[:3]}")
        if unexpected:
            bits.append(f"unexpected {unexpected[:3]}")
        if wrong:
            bits.append(f"shape mismatch {wrong[:3]} (checkpoint vs model)")
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit the model: {'; '.join(bits)}; check model.kind and its options"
        )
    return {k: obj[k].to(expected[k].dtype) for k in expected}


def nonfinite_entries(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of floating tensors holding NaN or inf."""
    return [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def save_state(path: str | Path, model: nn.Module) -> Path:
    """Write the model's state_dict atomically (temp file + rename)."""
    return save_atomic({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)


def save_atomic(obj: object, path: str | Path, flag: str = "--out") -> Path:
    """torch.save to `path` through a temporary file renamed into place; a failed write (a full disk)
    leaves no temporary and raises CheckpointError naming the path.

    Serialised in memory first: torch.save writing a file itself reports a full disk as a RuntimeError
    without the path or the reason."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    buf = io.BytesIO()
    torch.save(obj, buf)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(buf.getbuffer())
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}; free space there or choose another {flag}") from None
    return path


_SHA256: dict[tuple, str] = {}  # (real path, device, inode, size, mtime) -> digest: each file read once per process


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (how curve checkpoints name their endpoints, and result provenance
    its inputs), streamed in 1 MiB blocks; remembered per process while the file is unchanged, so a
    multi-GB checkpoint is hashed once per run however many records name it."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _SHA256:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA256[key] = h.hexdigest()
    return _SHA256[key]


def read_curve_checkpoint(path: str | Path, what: str = "curve checkpoint") -> dict:
    """A curve checkpoint's dict; CheckpointError (one line) for a model checkpoint or anything else."""
    path = Path(path)
    obj = read_checkpoint(path, what)
    if not is_curve_checkpoint(obj):
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(
                f"{what} {str(path)!r} is a model checkpoint (a state_dict), not a curve checkpoint; expected "
                f"{_CURVE_EXPECTED}"
            )
        raise CheckpointError(f"{what} {str(path)!r} is not a curve checkpoint; expected {_CURVE_EXPECTED}")
    if obj[CURVE_MARK] not in CURVE_FORMATS:
        raise CheckpointError(
            f"{what} {str(path)!r} has curve format {obj[CURVE_MARK]!r}; this version reads formats "
            f"{', '.join(map(str, CURVE_FORMATS))}"
        )
    theta, ends = obj.get("theta"), obj.get("endpoints")
    if obj[CURVE_MARK] == 1:
        theta_ok = isinstance(theta, dict)
    else:
        trained = obj.get("trained_endpoints")
        theta_ok = (isinstance(theta, list) and theta and all(isinstance(t, dict) for t in theta)
                    and isinstance(trained, list) and len(trained) == 2 and all(t is None or isinstance(t, dict) for t in trained))
    if not theta_ok or not isinstance(ends, list) or len(ends) != 2:
        raise CheckpointError(f"{what} {str(path)!r} is an incomplete curve checkpoint (no theta or no two endpoints)")
    if not all(isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str) for e in ends):
        raise CheckpointError(
            f"{what} {str(path)!r} is a damaged curve checkpoint: its endpoints are not records of a path and a sha256 "
            f"(got {', '.join(type(e).__name__ for e in ends)}); expected {_CURVE_EXPECTED}"
        )
    return obj


def save_curve(path: str | Path, record: dict) -> Path:
    """Write a curve checkpoint atomically (temp file + rename): format 1 for a `theta` state_dict, 2 for a list."""
    return save_atomic({CURVE_MARK: 2 if isinstance(record.get("theta"), list) else CURVE_FORMAT, **record}, path)


def curve_states(record: dict) -> tuple[list[dict], list[dict | None]]:
    """The bends' state_dicts (k >= 1) and the trained endpoints' (None where the endpoint stayed fixed) of a curve
    checkpoint's dict (read_curve_checkpoint)."""
    if isinstance(record["theta"], dict):
        return [record["theta"]], [None, None]
    return list(record["theta"]), list(record["trained_endpoints"])
