"""The math of loss landscapes, in PyTorch only: directions, slices, the evaluator.

Names are imported lazily (PEP 562): `landscape.errors` is needed by every CLI
command, torch (2 s to import) only by those that compute.
"""

from importlib import import_module

from .errors import CheckpointError, ClusterError, DataError, LandscapeError, ResultError, SpecError

__version__ = "0.1.0"

_LAZY = {
    "load_state": "checkpoints", "save_state": "checkpoints",
    "normalize_direction": "directions", "random_directions": "directions",
    "Evaluator": "evaluator", "ScanProblem": "evaluator", "check_fit": "evaluator",
    "ModelFactory": "factories", "MODEL_KINDS": "model_kinds", "build_model": "models",
    "StateLayout": "params", "EvalOptions": "plan",
    "Slice": "slices", "combine": "slices", "line_between": "slices", "plane_through": "slices",
    "random_slice": "slices",
    "trajectory_plane": "trajectory", "pca_slice": "trajectory", "path_slice": "trajectory",
    "StateEvaluator": "state_eval",
}

__all__ = sorted([*_LAZY, "CheckpointError", "ClusterError", "DataError", "LandscapeError", "ResultError", "SpecError"])


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'landscape' has no attribute {name!r}")
