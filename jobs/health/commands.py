"""The training-health commands: `landscape gradients` and `landscape lr-scan` (with `--bisect`)."""

from __future__ import annotations


def _gradients(args) -> int:
    from ..specs import GradientsSpec, load_spec
    from .gradients import run_gradients

    run_gradients(load_spec(args.spec, GradientsSpec), out=args.out, overwrite=args.overwrite, plot=not args.no_plot,
                  fmt=args.format, address=args.address, actors=args.actors, gpus_per_actor=args.gpus_per_actor)
    return 0


def _lr_scan(args) -> int:
    from ..specs import LRScanSpec, load_spec
    from .lr_bisect import run_bisect
    from .lr_scan import run_lr_scan

    run = run_bisect if args.bisect else run_lr_scan
    run(load_spec(args.spec, LRScanSpec), out=args.out, address=args.address, actors=args.actors,
        gpus_per_actor=args.gpus_per_actor, overwrite=args.overwrite, plot=not args.no_plot, fmt=args.format)
    return 0


def check_spec(spec) -> str:
    """What `landscape validate` says of a gradients or lr-scan spec, after checking model, data and tracked parameter."""
    from ..specs import GradientsSpec
    from ..training.train import check_train
    from .gradients import checked_model

    if isinstance(spec, GradientsSpec):
        inputs, _, factory, _ = check_train(spec)
        _, wm = checked_model(factory, "landscape gradients")
        return (f"valid gradients spec {spec.name!r}: {spec.model.kind} with {len(wm)} weight matrices, record: {spec.record}, "
                f"{spec.epochs} epoch(s), {len(inputs)} samples")
    from .lr_scan import build_lr_problem

    problem, _ = build_lr_problem(spec)
    r = spec.learning_rates
    return (f"valid lr-scan spec {spec.name!r}: {r.num} rates {r.lo:g}..{r.hi:g}, {spec.epochs} epoch(s) each, "
            f"tracking {problem.track}, {len(problem.inputs)} samples")


def add_parsers(sub) -> None:
    from ..common.flags import add_cluster_flags, add_output_flags

    g = sub.add_parser("gradients", help="train (or only initialize) on an actor and record gradient statistics per parameter")
    g.add_argument("spec")
    add_output_flags(g, "result path or URL (default: spec.output or results/<name>-gradients.zarr)")
    add_cluster_flags(g)
    g.set_defaults(run=_gradients)

    s = sub.add_parser("lr-scan", help="short trainings at log-spaced learning rates on the actors; --bisect for the breakthrough")
    s.add_argument("spec")
    s.add_argument("--bisect", action="store_true", help="find the breakthrough by bisection in log space (spec.bisect)")
    add_output_flags(s, "result path or URL (default: spec.output or results/<name>-lr-scan.zarr / -lr-bisect.zarr)")
    add_cluster_flags(s)
    s.set_defaults(run=_lr_scan)
