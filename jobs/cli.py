"""The `landscape` command line. Bad input: one line on stderr, exit status 2."""

from __future__ import annotations

import argparse
import json
import os
import sys

from landscape.errors import LandscapeError

from . import remote


def _positive_int(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def _nonneg_float(text: str) -> float:
    v = float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return v


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="landscape", description="Loss-landscape grid scans on Ray, into Zarr.")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a scan (or train) spec and the files it names")
    v.add_argument("spec")

    s = sub.add_parser("schema", help="print the JSON schema of a spec")
    s.add_argument("--kind", choices=["scan", "train"], default="scan")

    r = sub.add_parser("run", help="run (or resume) a scan")
    r.add_argument("spec")
    r.add_argument("--out", help="result path or URL (default: spec.output or results/<name>.zarr)")
    r.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster (default: start a local one)")
    r.add_argument("--actors", type=_positive_int)
    r.add_argument("--gpus-per-actor", type=_nonneg_float)
    r.add_argument("--overwrite", action="store_true", help="replace a different scan at --out")
    r.add_argument("--no-plot", action="store_true")
    r.add_argument("--format", choices=["png", "pdf", "svg"], default="png")

    t = sub.add_parser("train", help="train a built-in model, a checkpoint per epoch")
    t.add_argument("spec")
    t.add_argument("--out", help="checkpoint folder (default: spec.output or runs/<name>)")
    t.add_argument("--overwrite", action="store_true")

    pl = sub.add_parser("plot", help="plot a (possibly partial) result")
    pl.add_argument("result")
    pl.add_argument("--out", help="folder for the figures (default: beside the result)")
    pl.add_argument("--format", choices=["png", "pdf", "svg"], default="png")

    pt = sub.add_parser("point", help="write the weights at a grid point as a state_dict")
    pt.add_argument("result")
    pt.add_argument("--x", type=float, required=True)
    pt.add_argument("--y", type=float)
    pt.add_argument("-o", "--output", required=True)

    fe = sub.add_parser("fetch", help="copy a result (path, s3:// URL or Ray job id) into a local Zarr folder")
    fe.add_argument("source", help="result path or URL, or the id of a Ray job that ran `landscape run`")
    fe.add_argument("-o", "--output", required=True, help="local folder to create, e.g. results/scan.zarr")
    fe.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    fe.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster, for a job id (default: $RAY_ADDRESS)"
    )
    remote.add_parsers(sub)  # submit, status, logs, stop, list
    return p


def _validate(path: str) -> None:
    from .spec import ScanSpec, load_any_spec

    spec = load_any_spec(path)
    if isinstance(spec, ScanSpec):
        from .build import build_problem

        problem, _ = build_problem(spec)  # checkpoints exist and fit, data fits
        print(f"{path}: valid scan {spec.name!r}: {spec.slice.kind}, grid {spec.grid_shape}, {len(problem.inputs)} samples")
    else:
        print(f"{path}: valid training spec {spec.name!r}: {spec.model.kind} for {spec.epochs} epochs")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "schema":
            from .spec import ScanSpec, TrainSpec

            cls = ScanSpec if args.kind == "scan" else TrainSpec
            print(json.dumps(cls.model_json_schema(), indent=2))
        elif args.command == "validate":
            _validate(args.spec)
        elif args.command == "run":
            from .scan import run_scan
            from .spec import load_spec

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
        elif args.command == "train":
            from .spec import TrainSpec, load_spec
            from .train import run_train

            run_train(load_spec(args.spec, TrainSpec), out=args.out, overwrite=args.overwrite)
        elif args.command == "plot":
            from cluster.store import ResultStore

            from .plot import plot_result
            from .scan import plots_dir_for

            name = ResultStore.open(args.result).meta["name"]
            for path in plot_result(args.result, args.out or plots_dir_for(args.result, name), args.format):
                print(f"plot: {path}")
        elif args.command == "point":
            from .point import write_point

            print(f"weights: {write_point(args.result, args.x, args.y, args.output)}")
        elif args.command == "fetch":
            from .fetch import fetch_result

            dest = fetch_result(args.source, args.output, overwrite=args.overwrite, address=args.address)
            print(f"result: {dest}")
        elif args.command in remote.COMMANDS:
            return remote.run_command(args)
    except LandscapeError as e:
        print(f"landscape: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("landscape: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
