"""Every input file a spec names: what `landscape submit` ships with a job, and what result provenance hashes."""

from __future__ import annotations

from pathlib import Path


def input_files(spec, local: bool = True) -> list[tuple[tuple[str, ...], list[Path], bool]]:
    """Every input file a job carries: (where in the spec, the files, whether that field holds one file).

    A curve scan carries its curve checkpoint and the endpoints it names (read from it
    when `local`; on the cluster, with --remote-checkpoints, the recorded paths are used);
    a curve training job carries its endpoints; a trajectory its checkpoints in order (a
    glob resolved here; with --remote-checkpoints it stays a pattern for the cluster) and
    its origin file.
    """
    from . import CurveTrainSpec, slice_checkpoints

    if isinstance(spec, CurveTrainSpec):
        return [(("endpoints",), [Path(p) for p in spec.endpoints], False)]
    s = spec.slice
    if s.kind in ("curve", "curve_plane"):
        out = [(("slice", "curve"), [Path(s.curve)], True)]
        if s.endpoints:
            out.append((("slice", "endpoints"), [Path(p) for p in s.endpoints], False))
        elif local and Path(s.curve).is_file():
            from landscape.checkpoints import read_curve_checkpoint

            record = read_curve_checkpoint(s.curve, "slice.curve")
            out.append((("slice", "endpoints"), [Path(e["path"]) for e in record["endpoints"]], False))
        return out
    if getattr(s, "has_path", False):
        pattern = isinstance(s.checkpoints, str)
        listed = s.paths() if local or not pattern else [Path(s.checkpoints)]
        out = [(("slice", "checkpoints"), listed, False)]
        origin = s.origin_path() if hasattr(s, "origin_path") else None
        return out + ([(("slice", "origin"), [origin], True)] if origin is not None else [])
    key = "checkpoint" if getattr(s, "checkpoint", None) is not None else "checkpoints"
    return [(("slice", key), slice_checkpoints(s), key == "checkpoint")]
