"""`landscape hessian SPEC` and `landscape sharpness SPEC`: the parsers here, torch only when a command runs."""

from __future__ import annotations


def _hessian(args) -> int:
    from pydantic import ValidationError

    from landscape.errors import SpecError

    from ..specs import load_spec
    from ..specs.hessian import HessianSpec
    from .hessian import run_hessian

    spec = load_spec(args.spec, HessianSpec)
    if args.blocks:
        try:
            spec = HessianSpec.model_validate({**spec.model_dump(), "blocks": args.blocks})
        except ValidationError as e:
            raise SpecError(f"--blocks: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    run_hessian(spec, out=args.out, overwrite=args.overwrite, plot=not args.no_plot,
                fmt=args.format, device=args.device, trust_factories=args.trust_factories)
    return 0


def _add_hessian(sub) -> None:
    from ..common.flags import add_output_flags, add_trust_flag

    h = sub.add_parser("hessian", help="Hessian spectrum (top-k, smallest, trace, density) at a checkpoint or a grid point")
    h.add_argument("spec")
    add_output_flags(h, "result path or URL (default: spec.output or results/<name>.zarr)")
    h.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    h.add_argument("--blocks", nargs="+", metavar="auto|GLOB",
                   help="also each block's top eigenvalue, trace and density: auto (one block per layer) or globs")
    add_trust_flag(h)
    h.set_defaults(run=_hessian)


def _sharpness(args) -> int:
    from ..specs import load_spec
    from ..specs.sharpness import SharpnessSpec
    from .sharpness import run_sharpness

    run_sharpness(load_spec(args.spec, SharpnessSpec), out=args.out, overwrite=args.overwrite, device=args.device,
                  trust_factories=args.trust_factories)
    return 0


def _add_sharpness(sub) -> None:
    from ..common.flags import add_trust_flag

    h = sub.add_parser("sharpness", help="top Hessian eigenvalue, trace, epsilon-sharpness and adaptive sharpness at a point")
    h.add_argument("spec")
    h.add_argument("--out", help="result path or URL (default: spec.output or results/<name>.zarr)")
    h.add_argument("--overwrite", action="store_true", help="replace a different result at --out (never other files)")
    h.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    add_trust_flag(h)
    h.set_defaults(run=_sharpness)


def add_parsers(sub) -> None:
    _add_hessian(sub)
    _add_sharpness(sub)
