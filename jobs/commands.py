"""The local commands: validate, schema, run, train, plot, point, fetch."""

from __future__ import annotations

import argparse
import json
import os


def _validate(args) -> int:
    from .specs import load_any_spec, spec_checker, spec_kind

    spec = load_any_spec(args.spec)
    if args.spec_only:  # the fields alone: no torch (a second to import), no model, data or checkpoint read
        print(f"{args.spec}: valid {spec_kind(spec)} spec {spec.name!r} (fields only)")
        return 0
    check = spec_checker(spec)  # imports torch (the model, the data), never Ray
    trust = {"trust_factories": True} if args.trust_factories and "trust_factories" in check.__code__.co_varnames else {}
    print(f"{args.spec}: {check(spec, **trust)}")  # checkpoints exist and fit, data fits, ...
    return 0


def _schema(args) -> int:
    from .specs import spec_class

    print(json.dumps(spec_class(args.kind).model_json_schema(), indent=2))
    return 0


def _run(args) -> int:
    from .scan.run import run_scan
    from .specs import load_spec

    run_scan(
        load_spec(args.spec),
        out=args.out,
        address=args.address,
        actors=args.actors,
        gpus_per_actor=args.gpus_per_actor,
        overwrite=args.overwrite,
        plot=not args.no_plot,
        fmt=args.format,
    )
    return 0


def _train(args) -> int:
    from .specs import TrainSpec, load_spec
    from .training.train import run_train

    run_train(load_spec(args.spec, TrainSpec), out=args.out, overwrite=args.overwrite)
    return 0


def _plot(args) -> int:
    from cluster.store import ResultStore

    from .common.report import plot_and_say
    from .plot.options import options_from_args

    opts = options_from_args(args)  # bad options fail before anything is drawn
    name = ResultStore.open(args.result).meta["name"]
    if args.html:
        from .plot.html import write_html

        print(f"plot: {write_html(args.result, args.html, opts)}")
        return 0
    plot_and_say(args.result, name, args.format, out=args.out, opts=opts)
    return 0


def _point(args) -> int:
    from .scan.point import write_point

    print(f"weights: {write_point(args.result, args.x, args.y, args.output, extrapolate=args.extrapolate)}")
    return 0


def _fetch(args) -> int:
    from .service.fetch import fetch_result

    dest = fetch_result(args.source, args.output, overwrite=args.overwrite, address=args.address)
    print(f"result: {dest}")
    return 0


class _SpecKinds:
    """The kind names of SPEC_KINDS for argparse's `choices`, read when first needed (a bad --kind, `schema --help`):
    jobs.specs imports pydantic and every spec class, half of `landscape --help`'s start otherwise."""

    def _names(self) -> list[str]:
        from .specs import SPEC_KINDS

        return [kind for kind, *_ in SPEC_KINDS]

    def __contains__(self, kind) -> bool:
        return kind in self._names()

    def __iter__(self):
        return iter(self._names())


def add_parsers(sub) -> None:
    from .common.flags import add_cluster_flags, add_output_flags, add_plot_flags, add_trust_flag, finite_float

    v = sub.add_parser("validate", help="check a spec and the files it names")
    v.add_argument("spec")
    v.add_argument("--spec-only", action="store_true",
                   help="check the fields only, in well under a second (no torch); by default also build the model, "
                   "read the data and load the checkpoints")
    add_trust_flag(v)
    v.set_defaults(run=_validate)

    s = sub.add_parser("schema", help="print the JSON schema of a spec")
    s.add_argument("--kind", choices=_SpecKinds(), default="scan", metavar="KIND", help="%(choices)s (default: %(default)s)")
    s.set_defaults(run=_schema)

    r = sub.add_parser("run", help="run (or resume) a scan")
    r.add_argument("spec")
    add_output_flags(r, "result path or URL (default: spec.output or results/<name>.zarr)")
    add_cluster_flags(r)
    r.set_defaults(run=_run)

    t = sub.add_parser("train", help="train a built-in model, a checkpoint per epoch")
    t.add_argument("spec")
    t.add_argument("--out", help="checkpoint folder (default: spec.output or runs/<name>)")
    t.add_argument("--overwrite", action="store_true", help="retrain over a different spec's checkpoints in --out")
    t.set_defaults(run=_train)

    pl = sub.add_parser("plot", help="plot a (possibly partial) result")
    pl.add_argument("result")
    pl.add_argument("--out", help="folder for the figures (default: beside the result)")
    pl.add_argument("--format", choices=["png", "pdf", "svg"], default="png")
    pl.add_argument("--html", metavar="FILE", help="write one self-contained interactive HTML page (surface, heatmap) instead")
    add_plot_flags(pl)
    pl.set_defaults(run=_plot)

    pt = sub.add_parser("point", help="write the weights at a grid point as a state_dict")
    pt.add_argument("result")
    pt.add_argument("--x", type=finite_float, required=True)
    pt.add_argument("--y", type=finite_float)
    pt.add_argument("--extrapolate", action="store_true", help="allow a point outside the grid's range")
    pt.add_argument("-o", "--output", required=True)
    pt.set_defaults(run=_point)

    fe = sub.add_parser("fetch", help="copy a result (path, s3:// URL or Ray job id) into a local Zarr folder")
    fe.add_argument("source", help="result path or URL, or the id of a Ray job that ran `landscape run`")
    fe.add_argument("-o", "--output", required=True, help="local folder to create, e.g. results/scan.zarr")
    fe.add_argument("--overwrite", action="store_true", help="replace --output if it is a landscape result")
    fe.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster, for a job id (default: $RAY_ADDRESS)"
    )
    fe.set_defaults(run=_fetch)


__all__ = ["add_parsers", "argparse"]
