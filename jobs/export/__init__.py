"""A result in the formats other tools read: ParaView (VTK structured grid), Li et al.'s surface HDF5
(their plot_2D.py / h52vtp.py read it), Garipov et al.'s plane .npz (their plane_plot.py reads it).

Each writer takes the arrays exactly as stored (`source.read`) and writes one file under a temporary
name, renamed when complete: an interrupted export leaves nothing that looks finished.
"""

from __future__ import annotations

from pathlib import Path

from landscape.errors import SpecError

FORMATS = {"vtk": ".vts", "ll-h5": ".h5", "npz": ".npz"}


def export(result, fmt: str, out: str | Path | None = None, **options) -> Path:
    """Write `result` as `fmt` to `out` (default: beside the result, <name>.<suffix>); its path."""
    if fmt not in FORMATS:
        raise SpecError(f"export format {fmt!r} must be one of {', '.join(FORMATS)}")
    from .source import read  # numpy and zarr: only when a file is written, not for `landscape --help`

    plane = read(result)
    path = Path(out) if out else Path(str(result)).with_suffix("").with_name(Path(str(result)).name.removesuffix(".zarr") + FORMATS[fmt])
    if path.suffix != FORMATS[fmt]:
        path = path.with_name(path.name + FORMATS[fmt])
    if fmt != "vtk" and options:
        raise SpecError(f"{', '.join('--' + k for k in options)}: only with --format vtk")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        if fmt == "vtk":
            from .vtk import write_vtk

            write_vtk(plane, tmp, **options)
        elif fmt == "ll-h5":
            from .li_h5 import write_li_h5

            write_li_h5(plane, tmp)
        else:
            from .garipov_npz import write_garipov_npz

            write_garipov_npz(plane, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["FORMATS", "Plane", "export", "read"]


def __getattr__(name: str):  # Plane and read from .source, imported on first use (PEP 562)
    if name in ("Plane", "read"):
        from . import source

        return getattr(source, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
