"""What a user can change about a plane's figures, and the two papers' looks as presets.

`PlotOptions` is what `landscape plot` flags and the Python API (`jobs.plot.api`) fill in;
every field left None keeps the automatic choice. Bad values raise SpecError (one line, exit 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from landscape.errors import SpecError

# Li et al. (plot_2D.py): linear contour levels, labelled lines. Garipov et al. (plane.py):
# log-spaced filled levels, values above vmax clipped to the top colour, the top tick "> vmax".
STYLES: dict[str, dict] = {
    "li": {"level_scale": "linear", "levels": 20, "cmap": "summer", "filled": False},
    "garipov": {"level_scale": "log", "levels": 12, "cmap": "jet_r", "filled": True, "clip_top": True},
}


@dataclass(frozen=True)
class PlotOptions:
    metric: str = "loss"  # any per-point array of the result, or "error"/"<prefix>error" from an accuracy
    levels: int | tuple[float, ...] | None = None  # a count or explicit values; None: automatic
    level_scale: str | None = None  # "log" | "linear"; None: the metric's own (log for losses)
    vmin: float | None = None  # colour scale limits; values outside are clipped to the end colours
    vmax: float | None = None
    cmap: str | None = None
    title: str | None = None
    xlabel: str | None = None
    ylabel: str | None = None
    figsize: tuple[float, float] | None = None  # inches
    dpi: int = 120
    style: str | None = None  # "li" | "garipov": a preset for the fields above left unset
    filled: bool = False  # contour plot filled between levels (garipov)
    clip_top: bool = False  # the colour bar's top tick reads "> vmax" (garipov)

    def __post_init__(self):
        check(self)


def check(o: PlotOptions) -> None:
    if o.style is not None and o.style not in STYLES:
        raise SpecError(f"style {o.style!r} is not one of {', '.join(STYLES)}")
    if o.level_scale not in (None, "log", "linear"):
        raise SpecError(f"level scale {o.level_scale!r} must be log or linear")
    for name in ("vmin", "vmax"):
        v = getattr(o, name)
        if v is not None and not math.isfinite(v):
            raise SpecError(f"{name} must be a finite number, got {v}")
    if o.vmin is not None and o.vmax is not None and not o.vmin < o.vmax:
        raise SpecError(f"vmin ({o.vmin}) must be below vmax ({o.vmax})")
    if isinstance(o.levels, int) and not 2 <= o.levels <= 200:
        raise SpecError(f"levels must be a count from 2 to 200 or a list of values, got {o.levels}")
    if isinstance(o.levels, tuple):
        if len(o.levels) < 2 or any(not math.isfinite(v) for v in o.levels) or list(o.levels) != sorted(set(o.levels)):
            raise SpecError(f"levels {list(o.levels)} must be at least two finite values in increasing order")
    if o.figsize is not None and (len(o.figsize) != 2 or not all(0.5 <= s <= 100 for s in o.figsize)):
        raise SpecError(f"figsize {o.figsize} must be WIDTH,HEIGHT in inches, each from 0.5 to 100")
    if not 10 <= o.dpi <= 2400:
        raise SpecError(f"dpi must be from 10 to 2400, got {o.dpi}")
    if o.cmap is not None:
        import matplotlib

        if o.cmap not in matplotlib.colormaps:
            raise SpecError(f"unknown colormap {o.cmap!r} (any matplotlib colormap name, e.g. viridis, magma, jet_r)")


def resolved(o: PlotOptions | None) -> PlotOptions:
    """The options with the style's preset filling every field the user left at its default."""
    o = o or PlotOptions()
    if o.style is None:
        return o
    defaults = {f.name: f.default for f in fields(PlotOptions)}
    preset = {k: v for k, v in STYLES[o.style].items() if getattr(o, k) == defaults[k]}
    return replace(o, **preset)


def parse_levels(text: str) -> int | tuple[float, ...]:
    """'12' -> 12 levels; '0.1,0.2,0.5,1' -> those values."""
    try:
        if "," not in text:
            return int(text)
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SpecError(f"--levels {text!r} must be a count (e.g. 20) or comma-separated values (e.g. 0.1,0.2,0.5,1)") from None


def parse_figsize(text: str) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise SpecError(f"--figsize {text!r} must be WIDTH,HEIGHT in inches, e.g. 6,4.5") from None
    return w, h


def options_from_args(args) -> PlotOptions:
    levels, figsize = getattr(args, "levels", None), getattr(args, "figsize", None)
    return PlotOptions(
        metric=args.metric, levels=None if levels is None else parse_levels(levels),
        level_scale=args.level_scale, vmin=args.vmin, vmax=args.vmax, cmap=args.cmap, title=args.title,
        xlabel=args.xlabel, ylabel=args.ylabel, figsize=None if figsize is None else parse_figsize(figsize),
        dpi=getattr(args, "dpi", 120), style=getattr(args, "style", None),
    )
