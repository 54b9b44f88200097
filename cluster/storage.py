"""Where results live: local paths or fsspec URLs (s3://...), and storage errors as one line.

S3 credentials and endpoint come from the standard AWS settings
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL or
AWS_ENDPOINT_URL_S3, AWS_PROFILE), which botocore reads itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from landscape.errors import ResultError


def is_remote(url: str) -> bool:
    return "://" in str(url)


def is_s3(url: str) -> bool:
    return str(url).startswith(("s3://", "s3a://"))


def io_errors() -> tuple[type[BaseException], ...]:
    """What storage trouble raises (not bugs): OSError, which s3fs makes of S3's
    replies, and botocore's own errors (no credentials, endpoint unreachable)."""
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return (OSError,)
    return (OSError, BotoCoreError)


def storage_error(url: str, doing: str, e: BaseException) -> ResultError:
    """One line saying what failed on which URL, and where the settings come from."""
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if isinstance(e, OSError) and e.strerror and not is_remote(url):
        reason = e.strerror  # "[Errno 13] Permission denied: '/x/y'" -> "Permission denied"
    hint = ""
    if is_s3(url):
        hint = (
            "; create the bucket or correct the URL"
            if isinstance(e, FileNotFoundError)
            else "; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and AWS_ENDPOINT_URL"
        )
    return ResultError(f"cannot {doing} {url}: {reason}{hint}")


@contextlib.contextmanager
def storage_errors(url: str, doing: str):
    """Storage trouble inside the block becomes a one-line ResultError naming `url`."""
    try:
        yield
    except io_errors() as e:
        raise storage_error(str(url), doing, e) from None


def filesystem(url: str, storage_options: dict | None = None):
    """(filesystem, path) for a URL, with a fresh listing cache: zarr writes through its own instance."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as e:  # fsspec names the package to install, e.g. s3fs
        extra = " (pip install 'landscape[s3]')" if is_s3(url) else ""
        raise ResultError(f"cannot open {url}: {e}{extra}") from None
    except ValueError as e:  # unknown protocol
        raise ResultError(f"cannot open {url}: {e}") from None
    fs.invalidate_cache()
    return fs, path


def exists(url: str, storage_options: dict | None = None) -> bool:
    if not is_remote(url):
        return Path(url).exists() or Path(url).is_symlink()
    fs, path = filesystem(url, storage_options)
    with storage_errors(url, "read"):
        return fs.exists(path)


def is_dir(url: str, storage_options: dict | None = None) -> bool:
    if not is_remote(url):
        return Path(url).is_dir()
    fs, path = filesystem(url, storage_options)
    with storage_errors(url, "read"):
        return fs.isdir(path)


def entries(url: str, storage_options: dict | None = None) -> list[str]:
    """Names directly under a folder (or prefix), sorted; [] if there is none."""
    if not is_remote(url):
        p = Path(url)
        return sorted(c.name for c in p.iterdir()) if p.is_dir() else []
    fs, path = filesystem(url, storage_options)
    root = path.rstrip("/")
    with storage_errors(url, "list"):
        if not fs.isdir(root):
            return []
        return sorted({p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)})


def remove(url: str, name: str, storage_options: dict | None = None) -> None:
    """Delete the entry `name` (file or folder) under `url`."""
    if not is_remote(url):
        p = Path(url) / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        return
    fs, path = filesystem(url, storage_options)
    with storage_errors(url, f"delete {name} in"):
        target = f"{path.rstrip('/')}/{name}"
        if fs.exists(target):
            fs.rm(target, recursive=True)


def check_parent_folders(path: str | Path, flag: str) -> None:
    """ResultError (one line) unless `path`'s nearest existing ancestor is a folder we may write in:
    checked before any work, so an output under a file is refused before an evaluation runs."""
    path = Path(path).absolute()
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ResultError(f"cannot write {flag} {str(path)!r}: {str(parent)!r} is a file, not a folder; choose another {flag}")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ResultError(f"cannot write {flag} {str(path)!r}: no permission to write in {str(parent)!r}; choose another {flag}")
            return
