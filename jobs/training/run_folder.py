"""A folder of checkpoints written by one command, and its record: what the command may delete.

The record (`train.json`, `curve.json`) is written before the first checkpoint, listing every file the
run will write (`files`) with `finished: false`, and rewritten with `finished: true` last. A command
deletes only files its folder's record lists; a folder holding checkpoint-like files that no record
lists (someone's `epoch_005.pt`) is refused, as is one holding anything else. A record from before
`files` was kept (written last, so finished) owns the checkpoint-like names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

from landscape.errors import ResultError


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


class RunFolder:
    """`out_dir` with its record `record_name`; `ours` matches the names the command writes."""

    def __init__(self, out_dir: Path, record_name: str, ours: re.Pattern, command: str):
        self.dir = Path(out_dir)
        self.record = self.dir / record_name
        self.ours = ours
        self.command = command

    def read(self) -> dict | None:
        """The record; None if there is none; ResultError if it is not one of ours."""
        if not self.record.exists():
            return None
        try:
            record = json.loads(self.record.read_text())
        except (OSError, ValueError):
            record = None
        if not isinstance(record, dict):
            raise ResultError(f"{self.record} is not a record of `{self.command}`; the folder is left alone: choose another --out")
        return record

    @staticmethod
    def finished(record: dict | None) -> bool:
        return record is not None and record.get("finished", "files" not in record) is True

    def owned(self, record: dict | None) -> set[str]:
        """Names the record proves this command wrote (their temporaries too)."""
        if record is None:
            return set()
        if "files" not in record:  # a record of an older version: written last, over files matching `ours`
            return {p.name for p in self.dir.iterdir() if self.ours.match(p.name)}
        files = [f for f in record.get("files") or [] if isinstance(f, str) and "/" not in f and f not in ("", ".", "..")]
        return set(files) | {f + ".tmp" for f in files}

    def check(self, same_run: Callable[[dict], bool], overwrite: bool, other: str, files: str) -> bool:
        """True if the folder holds a finished run that passes `same_run`. ResultError if `--out` is a file,
        holds another finished run (`other`) without --overwrite, files not matching `ours`, or
        checkpoint-like files its record does not list."""
        if self.dir.exists() and not self.dir.is_dir():
            raise ResultError(f"--out {str(self.dir)!r} is a file; checkpoints go into a folder: choose another --out")
        record = self.read()
        if self.finished(record) and not overwrite:
            if same_run(record):
                return True
            raise ResultError(f"{self.dir} holds {other}; choose another --out or pass --overwrite")
        if self.dir.is_dir():
            names = sorted(p.name for p in self.dir.iterdir() if p.name not in (self.record.name, self.record.name + ".tmp"))
            foreign = [n for n in names if not self.ours.match(n)]
            if foreign:
                raise ResultError(f"{self.dir} holds files that are not {files} ({_shown(foreign)}); it is left alone: choose another --out")
            owned = self.owned(record)
            strangers = [n for n in names if n not in owned]
            if strangers:
                why = f"its {self.record.name} does not list them" if record is not None else f"there is no {self.record.name}"
                raise ResultError(
                    f"{self.dir} holds {_shown(strangers)}, which `{self.command}` did not write ({why}); "
                    "they are left alone: move them or choose another --out"
                )
        return False

    def start(self, files: list[str], keep: list[Path] = (), resumed: tuple[str, ...] = (), **fields) -> None:
        """Delete the files the previous record lists (never one of `keep`, nor the `resumed` names an
        interrupted run of the same identity goes on from), then record the ones this run will write,
        unfinished, before any of them is written."""
        record = self.read() if self.dir.is_dir() else None
        doomed = [self.dir / n for n in sorted(self.owned(record) - set(resumed)) if (self.dir / n).exists()]
        kept = {Path(k).resolve() for k in keep}
        clash = [str(p) for p in doomed if p.resolve() in kept]
        if clash:
            raise ResultError(f"{clash[0]} is an input of this run and lies in --out, where an earlier run's files are "
                              "replaced; copy it elsewhere or choose another --out")
        for p in doomed:
            p.unlink()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.write({**fields, "finished": False, "files": files})

    def finish(self, **fields) -> None:
        """Record that the run finished (written last: its presence with `finished: true` means so)."""
        record = self.read() or {}
        self.write({**record, **fields, "finished": True})

    def write(self, record: dict) -> None:
        tmp = self.record.with_name(self.record.name + ".tmp")
        try:
            tmp.write_text(json.dumps(record, indent=1))
            tmp.replace(self.record)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ResultError(f"cannot write {self.record}: {e.strerror or e}; free space there or choose another --out") from None
