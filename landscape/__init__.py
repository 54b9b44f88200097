"""The math of loss landscapes, in PyTorch only: directions, slices, the evaluator."""

from .checkpoints import load_state, save_state
from .directions import normalize_direction, random_directions
from .errors import CheckpointError, ClusterError, DataError, LandscapeError, ResultError, SpecError
from .evaluator import Evaluator, ScanProblem, check_fit
from .factories import ModelFactory
from .models import MODEL_KINDS, build_model
from .params import StateLayout
from .slices import Slice, combine, line_between, plane_through, random_slice

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "ClusterError", "DataError", "Evaluator", "LandscapeError", "MODEL_KINDS",
    "ModelFactory", "ResultError", "ScanProblem", "Slice", "SpecError", "StateLayout", "build_model",
    "check_fit", "combine", "line_between", "load_state", "normalize_direction", "plane_through",
    "random_directions", "random_slice", "save_state",
]
