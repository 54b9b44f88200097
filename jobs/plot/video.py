"""An animation result (dims (frame, y, x)) as a video and as figures.

Every frame is drawn like a plane's heatmap with contour lines, the curve over
it, w1, w2 and the bend marked; the colour scale and the (log) contour levels are
computed once over all frames, so colours mean the same loss in every frame.
MP4 through matplotlib's ffmpeg writer with ffmpeg from PATH or, when there is none,
the one imageio-ffmpeg installs; else an animated GIF through Pillow.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import zarr
from matplotlib import animation
from matplotlib.colors import LogNorm, Normalize

from landscape.errors import ResultError

from .data import Landscape, expand_done
from .maps import _decorate_2d, contour, heatmap
from .style import CMAP, levels, plain_log, shade_missing, value_range


def load_frame(g: zarr.Group, f: int, plane: int | None = None) -> Landscape:
    """Frame f of an animation result as a plane's Landscape (its own marks and curve).

    `plane`: draw frame f on frame `plane`'s plane instead (its values), with frame f's curve and marks
    projected onto it: the plane holds still and the bend moves over it."""
    meta = dict(g.attrs["landscape"])
    frame = meta["frames"][f]
    p = f if plane is None else plane
    raw = np.asarray(g["loss"][p], dtype=np.float64)  # (ny, nx)
    metrics = {n: np.ma.masked_invalid(np.asarray(g[n][p], dtype=np.float64)) for n in meta["metrics"] if n in g}
    evaluated = expand_done(np.asarray(g["tile_done"][p], dtype=bool), tuple(meta["tile_shape"]), raw.shape)
    curve, marks, extra = frame["curve_info"], frame["checkpoints"], {}
    if p != f:
        to_plane, off = projection(g, f, p)
        curve = {**curve, "points": (np.asarray(curve["points"], dtype=np.float64) @ to_plane.T).tolist()}
        marks = [{**m, **dict(zip("xy", (to_plane @ np.array([m["x"], m["y"]], dtype=np.float64)).tolist()))} for m in marks]
        extra = {"plane_of_epoch": meta["frames"][p]["epoch"], "bend_off_plane": off}
    fmeta = {**meta, "checkpoints": marks, "slice_info": {**meta.get("slice_info", {}), "curve": curve},
             "name": f"{meta['name']}, epoch {frame['epoch']}", "epoch": frame["epoch"], **extra}
    return Landscape(
        loss=metrics["loss"], accuracy=metrics.get("accuracy", np.ma.masked_all(raw.shape)),
        x=np.asarray(g["x"][...], dtype=np.float64), y=np.asarray(g["y"][...], dtype=np.float64), meta=fmeta,
        unfinished=~evaluated, diverged=evaluated & ~np.isfinite(raw), metrics=metrics,
    )


def projection(g: zarr.Group, f: int, p: int) -> tuple[np.ndarray, float]:
    """(M, d): plane coordinates q of frame f map to M @ q on frame p's plane (both bases orthonormal,
    both planes through w1); d: how far frame f's bend lies off frame p's plane."""
    df = np.asarray(g["directions"][f], dtype=np.float64)  # (2, P)
    dp = np.asarray(g["directions"][p], dtype=np.float64)
    m = dp @ df.T  # (2, 2)
    theta = np.asarray(g["curve_points"][f][1], dtype=np.float64)  # the bend in its own plane
    off = float(np.sqrt(max(theta @ theta - np.sum((m @ theta) ** 2), 0.0)))
    return m, off


def shared_scale(g: zarr.Group):
    """(norm, contour levels) over the finite losses of every frame."""
    loss = np.ma.masked_invalid(np.asarray(g["loss"][...], dtype=np.float64))  # (F, ny, nx)
    if not loss.count():
        return Normalize(0, 1), None
    lo, hi, log = value_range(loss)
    return (LogNorm(lo, hi) if log else Normalize(lo, hi)), levels(loss)


def draw_frame(fig, ls: Landscape, norm, lv) -> None:
    """One frame into `fig` (cleared): heatmap + contour lines on the shared scale, curve and marks."""
    fig.clear()
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(ls.x, ls.y, ls.loss, shading="nearest", cmap=CMAP, norm=norm)
    if lv is not None and ls.loss.count() and min(ls.loss.shape) >= 2:
        ax.contour(ls.x, ls.y, ls.loss, levels=lv, colors="white", linewidths=0.6, alpha=0.7)
    cb = fig.colorbar(mesh, ax=ax, label="loss")
    if isinstance(norm, LogNorm):
        plain_log(cb.ax.yaxis)
    shade_missing(ax, ls)
    _decorate_2d(ax, ls)
    ax.set_xlim(float(ls.x.min()), float(ls.x.max()))
    ax.set_ylim(float(ls.y.min()), float(ls.y.max()))


def have_ffmpeg() -> bool:
    """ffmpeg on PATH, else the one the imageio-ffmpeg package installs (matplotlib is pointed at it)."""
    if animation.writers.is_available("ffmpeg"):
        return True
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):  # not installed, or no binary for this platform
        return False
    matplotlib.rcParams["animation.ffmpeg_path"] = exe
    return animation.writers.is_available("ffmpeg")


def pick_writer(fmt: str, fps: float) -> tuple[animation.AbstractMovieWriter, str, str | None]:
    """(writer, file suffix, note) for format auto | mp4 | gif; mp4 without ffmpeg falls back to GIF with a note."""
    ffmpeg = have_ffmpeg()
    if fmt == "mp4" and not ffmpeg:
        return animation.PillowWriter(fps=fps), ".gif", (
            "video.format mp4 needs ffmpeg, which is not on PATH: wrote an animated GIF instead (install ffmpeg, "
            "or the imageio-ffmpeg package, for MP4)"
        )
    if fmt == "mp4" or (fmt == "auto" and ffmpeg):
        # codec "h264": matplotlib then rounds the frame to even sizes and asks for yuv420p, as players need
        return animation.FFMpegWriter(fps=fps, codec="h264"), ".mp4", None
    return animation.PillowWriter(fps=fps), ".gif", None


def write_video(result, target: str | Path, fmt: str = "auto", fps: float = 4, dpi: int = 100,
                plane: str = "each") -> tuple[Path, str | None]:
    """Write every frame of the animation result as one video `target`.mp4|.gif; (its path, a note or None).

    plane "each": every frame on its own plane; "last": every frame on the last frame's plane, its curve
    projected onto it (the plane holds still; the bend's distance off it is in the title).

    Written under a temporary name and renamed when complete: a killed render leaves nothing that looks finished.
    """
    g = result if isinstance(result, zarr.Group) else zarr.open_group(str(result), mode="r")
    frames = g["frame"].shape[0]
    norm, lv = shared_scale(g)
    writer, suffix, note = pick_writer(fmt, fps)
    path = Path(target).with_suffix(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{suffix}")
    fixed = frames - 1 if plane == "last" else None
    first = load_frame(g, 0, fixed)
    x0, x1, y0, y1 = first.extent
    ratio = float(np.clip((y1 - y0) / (x1 - x0), 0.4, 1.5)) if x1 > x0 else 0.75
    fig = plt.figure(figsize=(7.2, 1.4 + 5.6 * ratio), layout="constrained")
    try:
        with writer.saving(fig, str(tmp), dpi):
            for f in range(frames):
                draw_frame(fig, first if f == 0 else load_frame(g, f, fixed), norm, lv)
                writer.grab_frame()
        os.replace(tmp, path)
    except (subprocess.CalledProcessError, BrokenPipeError) as e:  # ffmpeg refused or died
        raise ResultError(
            f"ffmpeg could not write {path} ({type(e).__name__}); the result is complete: run `landscape animate` again "
            "with video.format: gif, or `landscape plot` it"
        ) from None
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path, note


def animation_figures(g: zarr.Group) -> dict:
    """JOBS["animation"] for `landscape plot`: the first and last frames' contour and heatmap."""
    n = g["frame"].shape[0]
    out = {}
    for tag, f in (("first", 0), ("last", n - 1)):
        out[f"{tag}_contour"] = lambda f=f: contour(load_frame(g, f))
        out[f"{tag}_heatmap"] = lambda f=f: _heat(load_frame(g, f))
    return out


def _heat(ls: Landscape):
    from .style import metric_norm

    return heatmap(ls, ls.loss, "loss", metric_norm("loss", ls.loss))
