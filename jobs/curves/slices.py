"""The curve slices of a scan spec: a curve checkpoint and its endpoints, checked, as flat vectors.

A curve checkpoint names its endpoints by path and SHA-256; a scan finds them at
`slice.endpoints` if given, else at the recorded paths, and refuses files whose
content no longer matches (the curve was trained between other models). An
endpoint the curve trained (fix_start / fix_end false) is the checkpoint's own
trained state, not the file it started from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from landscape.checkpoints import curve_states, file_sha256, fit_state, nonfinite_entries, read_curve_checkpoint
from landscape.curves import curve_plane, curve_slice
from landscape.errors import CheckpointError
from landscape.factories import ModelFactory
from landscape.params import StateLayout, non_float_state
from landscape.slices import Slice

from ..common.build import load_checked


@dataclass
class LoadedCurve:
    """A curve checkpoint with its endpoints, as flat state vectors of one layout."""

    kind: str
    layout: StateLayout
    w1: torch.Tensor  # (P,)
    theta: torch.Tensor  # (P,) one bend, (k, P) several
    w2: torch.Tensor  # (P,)
    extras: dict  # w1's non-float state (BatchNorm's num_batches_tracked)
    info: dict  # what the result records: the curve checkpoint and the endpoints, with hashes

    @property
    def epoch(self) -> int | None:
        return self.info["curve_checkpoint"].get("epoch")


def check_endpoint(path: Path, recorded: dict, i: int, curve: Path) -> None:
    """CheckpointError unless `path` exists and has the recorded content."""
    name = f"w{i + 1}"
    if not path.is_file():
        raise CheckpointError(
            f"endpoint {name} {str(path)!r} of curve checkpoint {str(curve)!r} does not exist; give slice.endpoints: "
            "[w1.pt, w2.pt] where they are now"
        )
    now = file_sha256(path)
    if now != recorded.get("sha256"):
        raise CheckpointError(
            f"endpoint {name} {str(path)!r} no longer matches curve checkpoint {str(curve)!r} (sha256 {now[:12]}, "
            f"recorded {str(recorded.get('sha256'))[:12]}): the curve was trained between other models; give the "
            "original file in slice.endpoints or train the curve again"
        )


def load_curve(curve: str | Path, factory: ModelFactory, endpoints=None, allow_nonfinite: bool = False,
               notes: list[str] | None = None, known: dict | None = None) -> LoadedCurve:
    """Read a curve checkpoint and its endpoints (hash-checked) for the model `factory` builds.

    `known`: endpoints read before in this run, {path: (sha256, flat, non-float state)}; an endpoint the curve
    records with the same content is taken from there, not read and hashed again (an animation's frames)."""
    curve = Path(curve)
    record = read_curve_checkpoint(curve, "slice.curve")
    model = factory()
    layout = StateLayout.of(model)
    paths = [Path(p) for p in endpoints] if endpoints else [Path(e["path"]) for e in record["endpoints"]]
    states, trained = curve_states(record)
    ends = []
    for i, (p, rec, own) in enumerate(zip(paths, record["endpoints"], trained)):
        if own is not None:  # trained with the curve: its state is in the checkpoint
            state = fit_state(own, model, f"{curve} (its trained w{i + 1})")
            ends.append((rec["sha256"], layout.flatten(state), non_float_state(state)))
            continue
        hit = (known or {}).get(str(p))
        if hit is None or hit[0] != rec.get("sha256"):
            check_endpoint(p, rec, i, curve)
            state = load_checked(p, model, allow_nonfinite, notes if notes is not None else [])
            hit = (rec["sha256"], layout.flatten(state), non_float_state(state))
            if known is not None:
                known[str(p)] = hit
        ends.append(hit)
    thetas = [fit_state(th, model, f"{curve} (its theta)") for th in states]
    bad = [n for st in thetas + [e for e in trained if e is not None] for n in nonfinite_entries(st)]
    if bad and not allow_nonfinite:
        raise CheckpointError(
            f"curve checkpoint {str(curve)!r} holds NaN or inf in theta ({', '.join(bad[:4])}): its training diverged; "
            "set allow_nonfinite: true to scan it anyway"
        )
    info = {
        "curve_checkpoint": {"path": str(curve), "sha256": file_sha256(curve), "epoch": record.get("epoch")},
        "endpoints": [{"path": str(p), "sha256": rec["sha256"], **({"trained": True} if own is not None else {})}
                      for p, rec, own in zip(paths, record["endpoints"], trained)],
    }
    (_, w1, extras), (_, w2, _) = ends
    flats = [layout.flatten(th) for th in thetas]
    theta = flats[0] if len(flats) == 1 else torch.stack(flats)
    return LoadedCurve(record["kind"], layout, w1, theta, w2, extras, info)


def fit_curve_grid(spec, sl):
    """spec.grid with Garipov et al.'s plane.py range: x from -m to 1 + m times |w2 - w1|, y from -m to 1 + m times the
    bend's distance from the line (m = grid.margin, default 0.2); and what the result records about it."""
    from pydantic import ValidationError

    from landscape.errors import SpecError

    from ..specs.base import format_validation_error
    from ..specs.parts import Axis

    g, m = spec.grid, spec.grid.fit_margin
    pts = sl.info["curve"]["points"]  # w1, theta, w2 in plane coordinates
    dx, dy = float(pts[2][0]), float(pts[1][1])
    axes = {}
    for name, span in (("x", dx), ("y", dy)):
        try:
            axes[name] = Axis(min=-m * span, max=(1 + m) * span, num=getattr(g, name).num)
        except ValidationError as e:
            raise SpecError(format_validation_error(e, f"grid.{name} fitted to the curve")) from None
    return g.model_copy(update=axes), {"fit": "curve", "margin": m, "x": [axes["x"].min, axes["x"].max],
                                       "y": [axes["y"].min, axes["y"].max], "dx": dx, "dy": dy}


def build_curve_slice(spec, factory: ModelFactory, notes: list[str], data=None, known: dict | None = None) -> tuple[Slice, dict]:
    """The `curve` or `curve_plane` slice of a scan spec, and w1's non-float state (`known`: see load_curve)."""
    s = spec.slice
    c = load_curve(s.curve, factory, s.endpoints, spec.allow_nonfinite, notes, known)
    if s.kind == "curve":
        return curve_slice(c.layout, c.kind, c.w1, c.theta, c.w2, info=c.info), c.extras
    sl = curve_plane(c.layout, c.kind, c.w1, c.theta, c.w2, info=c.info)
    pts = sl.info["curve"]["points"]  # w1, theta, w2
    gx, gy = spec.grid.x, spec.grid.y
    if spec.grid.fit == "curve":  # the fitted grid holds the three points by construction
        return sl, c.extras
    outside = [m["label"] for m in sl.checkpoints if not (gx.min <= m["x"] <= gx.max and gy.min <= m["y"] <= gy.max)]
    if outside:
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        notes.append(
            f"curve_plane: {', '.join(outside)} lie(s) outside the grid; w1 is at (0, 0), w2 at ({pts[2][0]:.4g}, 0), "
            f"the bend at ({pts[1][0]:.4g}, {pts[1][1]:.4g}): e.g. grid.x from {min(xs) - 0.2 * (max(xs) - min(xs)):.3g} "
            f"to {max(xs) + 0.2 * (max(xs) - min(xs)):.3g}, grid.y from {min(ys) - 0.5 * max(ys):.3g} to {1.5 * max(ys):.3g}"
        )
    return sl, c.extras
