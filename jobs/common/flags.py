"""The command-line flags several commands share, and argparse types that refuse bad numbers in one line."""

from __future__ import annotations

import argparse
import math
import os


def _number(text: str, kind: type, what: str, ok) -> int | float:
    """`text` as a `kind` for which ok(value) holds, else argparse's one-line refusal saying `what` it must be."""
    try:
        v = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return v


def positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v > 0)


def nonneg_float(text: str) -> float:
    return _number(text, float, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)


def finite_float(text: str) -> float:
    return _number(text, float, "a finite number", math.isfinite)


def add_output_flags(p: argparse.ArgumentParser, out_help: str, plots: bool = True) -> None:
    """--out, --overwrite (a landscape result only, never other files), and --no-plot/--format."""
    p.add_argument("--out", help=out_help)
    p.add_argument("--overwrite", action="store_true", help="replace a different result at --out (never other files)")
    if plots:
        p.add_argument("--no-plot", action="store_true")
        p.add_argument("--format", choices=["png", "pdf", "svg"], default="png")


def add_trust_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-factories", action="store_true",
                   help="run the kind: import factories recorded in a result the spec names (they are code)")


def add_cluster_flags(p: argparse.ArgumentParser) -> None:
    """Where the actors run: --address (default: a local Ray), --actors, --gpus-per-actor."""
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster (default: start a local one)")
    p.add_argument("--actors", type=positive_int)
    p.add_argument("--gpus-per-actor", type=nonneg_float)


def add_plot_flags(p, static: bool = True) -> None:
    """The flags that fill jobs.plot.options.PlotOptions (it checks them: this module imports no matplotlib); static=False leaves out those only a static figure has (levels, size, dpi, style)."""
    g = p.add_argument_group("figure options (2D maps)")
    g.add_argument("--metric", default="loss", help="the array to draw (loss, accuracy, error, test_loss, ...)")
    g.add_argument("--level-scale", choices=["log", "linear"], help="spacing of the colour scale (and of counted contour levels)")
    g.add_argument("--vmin", type=float, help="colour scale minimum (lower values get the lowest colour)")
    g.add_argument("--vmax", type=float, help="colour scale maximum (higher values get the top colour)")
    g.add_argument("--cmap", help="matplotlib colormap name")
    g.add_argument("--title", help="title (default: model, data, split and slice)")
    g.add_argument("--xlabel", help="x axis label")
    g.add_argument("--ylabel", help="y axis label")
    if static:
        g.add_argument("--levels", help="contour levels: a count (20) or values (0.1,0.2,0.5,1)")
        g.add_argument("--figsize", help="WIDTH,HEIGHT in inches")
        g.add_argument("--dpi", type=int, default=120)
        g.add_argument("--style", help="li: linear labelled levels; garipov: filled log levels, '> vmax'")
