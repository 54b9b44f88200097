"""`landscape export RESULT --format vtk|ll-h5|npz`."""

from __future__ import annotations


def _export(args) -> int:
    from . import export

    vtk = {k: v for k, v in (("metric", args.metric), ("zmax", args.zmax), ("log", args.log or None), ("interp", args.interp))
           if v is not None}
    if args.format != "vtk" and vtk:
        from landscape.errors import SpecError

        raise SpecError(f"{', '.join('--' + k for k in vtk)}: only with --format vtk")
    print(f"export: {export(args.result, args.format, args.output, **vtk)}")
    return 0


def add_parsers(sub) -> None:
    from jobs.common.flags import finite_float, positive_int

    from . import FORMATS

    e = sub.add_parser("export", help="write a result for ParaView (vtk), Li et al.'s scripts (ll-h5) or Garipov et al.'s (npz)")
    e.add_argument("result")
    e.add_argument("--format", required=True, choices=list(FORMATS))
    e.add_argument("-o", "--output", help="file to write (default: beside the result, <name>.vts|.h5|.npz)")
    g = e.add_argument_group("vtk surface (as Li et al.'s h52vtp.py)")
    g.add_argument("--metric", help="the height of the surface (default: loss)")
    g.add_argument("--zmax", type=finite_float, help="cap the height at this value (before --log)")
    g.add_argument("--log", action="store_true", help="height = log10(value)")
    g.add_argument("--interp", type=positive_int, help="resample linearly to an N x N grid")
    e.set_defaults(run=_export)
