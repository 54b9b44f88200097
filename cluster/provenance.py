"""What a resumed run does with the provenance a result recorded (built by jobs/common/provenance.py).

Provenance is not part of a result's identity, so a run of the same spec resumes a result
whatever it recorded. Then:
- an input file (checkpoint or data file) whose SHA-256 changed is refused in one line: the
  numbers already stored came from other weights or data, and new tiles would not match them;
- other changes (library versions, landscape's version or commit, the device) are one warning
  line, and the resumed run's provenance is appended under `resumes`;
- a result written before provenance was recorded gets this run's, marked as such.
Files are compared by role and order, not by path: a submitted job reads uploaded copies.
"""

from __future__ import annotations

import sys

from landscape.errors import ResultError

_INPUTS = ("checkpoints", "data_files")
_RUN = ("landscape", "libraries", "device", "precision")


def _inputs(p: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for kind in _INPUTS:
        for e in p.get(kind) or []:
            out.setdefault(e.get("role", kind), []).append(e)
    return out


def _changed_input(old: dict, new: dict) -> str | None:
    before, now = _inputs(old), _inputs(new)
    for role, entries in before.items():
        for i, (a, b) in enumerate(zip(entries, now.get(role, []))):
            if a.get("sha256") != b.get("sha256"):
                return (f"{role} {b.get('path')!r} now has SHA-256 {str(b.get('sha256'))[:12]}..., the result was computed "
                        f"from {str(a.get('sha256'))[:12]}... ({a.get('submitted_path') or a.get('path')})")
    return None


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in ("version", "commit"):
        a, b = (old.get("landscape") or {}).get(key), (new.get("landscape") or {}).get(key)
        if a != b:
            out.append(f"landscape {key} {a or 'unknown'} -> {b or 'unknown'}")
    libs_a, libs_b = old.get("libraries") or {}, new.get("libraries") or {}
    out += [f"{k} {libs_a.get(k)} -> {libs_b.get(k)}" for k in sorted(libs_a.keys() & libs_b.keys()) if libs_a[k] != libs_b[k]]
    out += [f"{k} {old.get(k)} -> {new.get(k)}" for k in ("device", "precision") if old.get(k) != new.get(k)]
    return out


def resumed_provenance(old: dict | None, new: dict | None, url: str, computing: bool = True) -> dict | None:
    """The provenance to keep when this run (`new`) goes on with the result at `url` (`old`): ResultError
    if an input file changed, one warning line if the code, libraries or device did (when `computing`:
    a complete result that is only reported computes nothing)."""
    if new is None:
        return old
    if not isinstance(old, dict):
        return {**new, "recorded_from": "a resume (the runs before it recorded none)"}
    changed = _changed_input(old, new)
    if changed:
        raise ResultError(f"output {url!r}: {changed}: its numbers would change; restore that file, or choose another "
                          "--out, or pass --overwrite to compute the result again")
    diffs = _differences(old, new)
    if not diffs or not computing:
        return old
    print(f"warning: resuming {url} with {', '.join(diffs)}; its earlier parts were computed with the former",
          file=sys.stderr, flush=True)
    return {**old, "resumes": [*(old.get("resumes") or []), {k: new.get(k) for k in _RUN}]}
