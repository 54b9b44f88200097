"""Mode-connectivity commands: `landscape train-curve` and `landscape animate`."""

from __future__ import annotations

import os


def _train_curve(args) -> int:
    from ..specs import CurveTrainSpec, load_spec
    from .train import run_train_curve

    spec = load_spec(args.spec, CurveTrainSpec)
    folder = run_train_curve(spec, out=args.out, overwrite=args.overwrite, address=args.address,
                             workers=args.workers, gpus_per_worker=args.gpus_per_worker)
    if not args.no_plot:
        from ..plot.curves import plot_history

        print(f"plot: {plot_history(folder, spec.name)}")
    return 0


def _animate(args) -> int:
    from ..specs import AnimateSpec, load_spec
    from .animate import run_animate

    run_animate(load_spec(args.spec, AnimateSpec), out=args.out, address=args.address, actors=args.actors,
                gpus_per_actor=args.gpus_per_actor, overwrite=args.overwrite, video=not args.no_video,
                video_path=args.video)
    return 0


def check_curve(spec) -> str:
    """`landscape validate` of a curve training spec: the endpoints, the data and the model."""
    from .train import check_curve_train

    setup = check_curve_train(spec)
    c = spec.curve
    bends = f" of {c.num_bends} bends" if c.num_bends > 1 else ""
    trained = [w for w, fixed in (("w1", c.fix_start), ("w2", c.fix_end)) if not fixed]
    ends = f" ({' and '.join(trained)} trained too)" if trained else ""
    return (f"valid curve training spec {spec.name!r}: {c.kind}{bends} between {spec.endpoints[0]} and "
            f"{spec.endpoints[1]}{ends}, {spec.epochs} epochs, {len(setup.inputs)} samples")


def check_animate(spec) -> str:
    """`landscape validate` of an animation spec: the curve run's checkpoints, the data and the model."""
    from .animate import build_frames

    series, _, records = build_frames(spec)
    return (f"valid animation {spec.name!r}: {series.frames} frames (epochs {records[0]['epoch']}.."
            f"{records[-1]['epoch']}), grid {spec.grid_shape}")


def add_parsers(sub) -> None:
    from ..common.flags import add_cluster_flags, add_output_flags, nonneg_float, positive_int

    address = dict(default=os.environ.get("RAY_ADDRESS"), help="Ray cluster (default: start a local one when needed)")
    t = sub.add_parser("train-curve", help="train a Bezier curve or polygonal chain between two checkpoints (mode connectivity)")
    t.add_argument("spec")
    t.add_argument("--out", help="curve checkpoint folder (default: spec.output or runs/<name>)")
    t.add_argument("--overwrite", action="store_true", help="retrain over a different curve's checkpoints in --out")
    t.add_argument("--workers", type=positive_int,
                   help="data-parallel Ray Train workers (TorchTrainer, DDP); default: train in this process")
    t.add_argument("--address", **address)
    t.add_argument("--gpus-per-worker", type=nonneg_float)
    t.add_argument("--no-plot", action="store_true", help="skip the history plot (<out>-plots/history.png)")
    t.set_defaults(run=_train_curve)

    a = sub.add_parser("animate", help="a curve_plane scan per epoch of a curve run, as one job, then a video (MP4 or GIF)")
    a.add_argument("spec")
    add_output_flags(a, "result path (default: spec.output or results/<name>.zarr)", plots=False)
    add_cluster_flags(a)
    a.add_argument("--no-video", action="store_true", help="evaluate only")
    a.add_argument("--video", help="video path without suffix (default: beside the result, <name>-plots/<name>)")
    a.set_defaults(run=_animate)
