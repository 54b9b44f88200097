"""`landscape plot --html FILE`: one self-contained page (plotly's JavaScript inlined, nothing fetched)
with the rotatable 3D surface, the heatmap with the value under the cursor, the paths and points the
static figures draw (curve, training path, checkpoints) and the result's metadata.

A log colour scale is drawn as log10 of the values with the colour bar labelled in the values; the
hover text always shows the value itself.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np

from .data import Landscape
from .labels import axis_labels, log_by_default, metric_values
from .options import PlotOptions, resolved
from .scales import round_ticks, tick_text
from .style import CMAP, title

MAX_POINTS = 1_000_000  # a bigger grid makes the page slow: thin it to this many points


def colorscale(name: str, n: int = 11) -> list:
    """Any matplotlib colormap as plotly stops."""
    import matplotlib
    from matplotlib.colors import to_hex

    cmap = matplotlib.colormaps[name]
    return [[i / (n - 1), to_hex(cmap(i / (n - 1)))] for i in range(n)]


def paths(ls: Landscape) -> list[dict]:
    """The overlays as (name, x, y) polylines and marked points, in plane coordinates."""
    out = []
    curve = (ls.meta.get("slice_info") or {}).get("curve")
    if curve and ls.loss.ndim == 2:
        from landscape.curves import curve_xy

        pts = np.asarray(curve["points"], dtype=np.float64)
        xy = curve_xy(curve["kind"], pts)
        out.append({"name": "straight line", "x": pts[[0, 2], 0], "y": pts[[0, 2], 1], "dash": "dash", "color": "#404040"})
        out.append({"name": f"{curve['kind']} curve", "x": xy[:, 0], "y": xy[:, 1], "color": "#ff7f0e"})
    if ls.meta.get("slice_kind") == "trajectory_pca":
        from .trajectory import PATH_COLOR, path_xy

        xs, ys = path_xy(ls)
        if len(xs):
            out.append({"name": "training path (projected)", "x": xs, "y": ys, "color": PATH_COLOR, "markers": True})
    return out


def _checkpoints(ls: Landscape) -> list[dict]:
    return [cp for cp in ls.meta.get("checkpoints", []) or [] if cp.get("x") is not None
            and (ls.loss.ndim == 1 or cp.get("y") is not None)]


def _thin(ls: Landscape) -> int:
    return max(1, int(np.ceil(np.sqrt(ls.loss.size / MAX_POINTS))))


def plane_figures(ls: Landscape, opts: PlotOptions):
    import plotly.graph_objects as go

    from .maps import _values

    z, label, lo, hi, log = _values(ls, opts)
    s = _thin(ls)
    x, y, z = ls.x[::s], ls.y[::s], z[::s, ::s]
    shown = np.ma.clip(z, lo, hi)
    c = np.ma.log10(shown) if log else shown
    cz = c.filled(np.nan)
    ticks = round_ticks(lo, hi, log)
    bar = {"title": {"text": label}, "tickvals": list(np.log10(ticks) if log else ticks), "ticktext": [tick_text(t) for t in ticks]}
    hover = np.where(np.ma.getmaskarray(z), "not evaluated / diverged",
                     np.vectorize(tick_text, otypes=[str])(np.ma.filled(z.astype(np.float64), np.nan)))
    cs = colorscale(opts.cmap or CMAP)
    xl, yl = axis_labels(ls.meta)
    xl, yl = opts.xlabel or xl, opts.ylabel or yl
    zrange = [float(np.log10(lo)), float(np.log10(hi))] if log else [lo, hi]
    common = {"x": x, "y": y, "colorscale": cs, "cmin": zrange[0], "cmax": zrange[1], "colorbar": bar, "text": hover}
    surf = go.Figure(go.Surface(z=cz, **common, name=label,
                                hovertemplate=f"{xl}: %{{x:.4g}}<br>{yl}: %{{y:.4g}}<br>{label}: %{{text}}<extra></extra>"))
    zaxis = {"title": {"text": label}, "range": zrange}
    if log:  # heights are log10 of the values; the axis says the values
        zaxis.update(tickvals=bar["tickvals"], ticktext=bar["ticktext"])
    surf.update_layout(scene={"xaxis_title": xl, "yaxis_title": yl, "zaxis": zaxis, "aspectmode": "manual",
                              "aspectratio": {"x": 1, "y": 1, "z": 0.6}, "camera": {"eye": {"x": -1.5, "y": -1.5, "z": 1.0}}},
                       height=650, margin={"l": 0, "r": 0, "t": 30, "b": 0})
    heat_args = {k: v for k, v in common.items() if k not in ("cmin", "cmax")}
    heat = go.Figure(go.Heatmap(z=cz, zmin=zrange[0], zmax=zrange[1], **heat_args, name=label,
                                hovertemplate=f"{xl}: %{{x:.4g}}<br>{yl}: %{{y:.4g}}<br>{label}: %{{text}}<extra></extra>"))
    for p in paths(ls):
        heat.add_trace(go.Scatter(x=p["x"], y=p["y"], name=p["name"], mode="lines+markers" if p.get("markers") else "lines",
                                  line={"color": p["color"], "dash": p.get("dash", "solid"), "width": 2.5}))
    cps = _checkpoints(ls)
    if cps:
        heat.add_trace(go.Scatter(x=[cp["x"] for cp in cps], y=[cp["y"] for cp in cps], text=[str(cp.get("label", "")) for cp in cps],
                                  mode="markers+text", textposition="top right", name="checkpoints",
                                  marker={"color": "white", "size": 10, "line": {"color": "black", "width": 1.5}}))
        # the same points on the surface, at the height of the nearest grid point
        ix = [int(np.abs(x - cp["x"]).argmin()) for cp in cps]
        iy = [int(np.abs(y - cp["y"]).argmin()) for cp in cps]
        surf.add_trace(go.Scatter3d(x=[cp["x"] for cp in cps], y=[cp["y"] for cp in cps], z=[float(cz[j, i]) for i, j in zip(ix, iy)],
                                    text=[str(cp.get("label", "")) for cp in cps], mode="markers+text", name="checkpoints",
                                    marker={"color": "white", "size": 5, "line": {"color": "black", "width": 1}}))
    heat.update_layout(xaxis_title=xl, yaxis_title=yl, height=600, yaxis={"scaleanchor": "x"} if _square(ls) else {},
                       legend={"orientation": "h", "y": -0.15}, margin={"t": 30})
    return {"surface": surf, "heatmap": heat}


def _square(ls: Landscape) -> bool:
    x0, x1, y0, y1 = ls.extent
    return x1 > x0 and y1 > y0 and 1 / 3 <= (y1 - y0) / (x1 - x0) <= 3


def line_figures(ls: Landscape, opts: PlotOptions):
    import plotly.graph_objects as go

    fig = go.Figure()
    for name in ls.metrics:
        z, label = metric_values(ls.metrics, name)
        if not z.count():
            continue
        fig.add_trace(go.Scatter(x=ls.x, y=z.filled(np.nan), name=label, mode="lines",
                                 yaxis="y2" if label.endswith("(%)") else "y"))
    fig.update_layout(xaxis_title=opts.xlabel or axis_labels(ls.meta)[0], yaxis={"title": "value", "type": "log" if log_by_default("loss") else "linear"},
                      yaxis2={"title": "%", "overlaying": "y", "side": "right"}, height=550)
    return {"line": fig}


def _meta_rows(meta: dict) -> str:
    rows = []
    for k, v in meta.items():
        text = v if isinstance(v, str) else json.dumps(v, default=str, indent=1)
        rows.append(f"<tr><th>{html.escape(str(k))}</th><td><pre>{html.escape(text)}</pre></td></tr>")
    return "\n".join(rows)


def page(ls: Landscape, opts: PlotOptions | None = None) -> str:
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    opts = resolved(opts)
    figs = plane_figures(ls, opts) if ls.loss.ndim == 2 else line_figures(ls, opts)
    heading = opts.title or title(ls)
    config = {"displaylogo": False, "responsive": True}
    divs = "\n".join(f'<section><h2>{name}</h2>{pio.to_html(f, full_html=False, include_plotlyjs=False, config=config, div_id=f"plot-{name}")}</section>'
                     for name, f in figs.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading.splitlines()[0])}</title>
<style>body{{font-family:sans-serif;margin:1em 2em}} pre{{margin:0;white-space:pre-wrap;max-height:12em;overflow:auto}}
th{{text-align:left;vertical-align:top;padding-right:1em}} table{{font-size:80%}}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body><h1 style="font-size:130%">{html.escape(heading).replace(chr(10), "<br>")}</h1>
{divs}
<details><summary>result metadata</summary><table id="metadata">{_meta_rows(ls.meta)}</table></details>
</body></html>
"""


def write_html(result, target: str | os.PathLike, opts: PlotOptions | None = None) -> Path:
    """Write the page for `result` (path, Zarr group, xarray.Dataset or Landscape) to `target`; its path."""
    from .api import as_landscape

    ls = as_landscape(result)
    job = ls.meta.get("job", "scan")
    if job != "scan" or ls.loss.ndim not in (1, 2):
        from landscape.errors import ResultError

        raise ResultError(f"--html draws a scan (a line or a plane); this result is of kind {job!r} with {ls.loss.ndim} "
                          "dimension(s): plot it without --html")
    text = page(ls, opts)
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
