"""Mode-connecting curves (Garipov et al. 2018): geometry, slices, and the training objective.

A curve joins two trained models w1, w2 through one trained bend theta:
- bezier: phi(t) = (1-t)^2 w1 + 2t(1-t) theta + t^2 w2
- polychain: w1 -> theta -> w2, linear on each half, theta at t = 0.5.
Both are combinations of the basis (w1, theta, w2) with coefficients from
`coefmaps.BezierMap` / `PolychainMap`; the straight line is `ChordMap`. The same
coefficients move every float entry of the state (weights and BatchNorm running
statistics), as line_between and plane_through do, so w1, w2 (and the chain's
vertex) are reproduced bit for bit.

Two slices: `curve` (1D, t in [0, 1], with the straight line between the same
endpoints as a companion path) and `curve_plane` (the plane through w1, w2 and
theta, Garipov et al.'s basis, with the curve's coordinates recorded for drawing).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from .coefmaps import BezierMap, ChordMap, CoefMap, PolychainMap
from .errors import SpecError
from .params import StateLayout
from .slices import Slice, combine, plane_through
from .training import mean_loss

CURVE_MAPS: dict[str, type[CoefMap]] = {"bezier": BezierMap, "polychain": PolychainMap}
CURVE_KINDS = tuple(CURVE_MAPS)
BEND_LABEL = "θ (bend)"


def curve_map(kind: str) -> CoefMap:
    if kind not in CURVE_MAPS:
        raise SpecError(f"unknown curve kind {kind!r}; expected one of {', '.join(CURVE_KINDS)}")
    return CURVE_MAPS[kind]()


def coefficients(kind: str, t: float) -> tuple[float, float, float]:
    """(c_w1, c_theta, c_w2) of phi(t), float64."""
    c = curve_map(kind)(np.array([[float(t)]]))[0]
    return float(c[0]), float(c[1]), float(c[2])


def basis(w1: torch.Tensor, theta: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """(3, P) fp32: the curve's basis, one flat state vector per row."""
    return torch.stack([w1.float(), theta.float(), w2.float()])


def phi(kind: str, t: float, w1: torch.Tensor, theta: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """(P,) the flat state at t, formed exactly as the evaluator forms a grid point of a curve scan."""
    b = basis(w1, theta, w2)
    return combine(torch.zeros_like(b[0]), b, coefficients(kind, t))


# -- slices ------------------------------------------------------------------------------


def _mark(label: str, x: float, y: float | None = None) -> dict:
    return {"label": label, "x": float(x), "y": None if y is None else float(y)}


def curve_slice(layout: StateLayout, kind: str, w1: torch.Tensor, theta: torch.Tensor, w2: torch.Tensor,
                info: dict | None = None) -> Slice:
    """The curve as a 1D slice over t, with the straight line w1 -> w2 as the companion "line" (alpha = t)."""
    check_distinct(layout, w1, w2)
    marks = [_mark("w1", 0.0), _mark("w2", 1.0)]
    if kind == "polychain":
        marks.insert(1, _mark(BEND_LABEL, 0.5))
    b = basis(w1, theta, w2)
    return Slice("curve", layout, torch.zeros_like(b[0]), b, marks, curve_map(kind),
                 info={"curve_kind": kind, "companions": {"line": "the straight line between the same endpoints (alpha = t)"},
                       **(info or {})},
                 companions={"line": ChordMap()})


def curve_plane(layout: StateLayout, kind: str, w1: torch.Tensor, theta: torch.Tensor, w2: torch.Tensor,
                info: dict | None = None) -> Slice:
    """The plane through w1, w2 and theta: origin w1, e1 along w2 - w1, e2 the Gram-Schmidt of theta - w1.

    Euclidean coordinates over the parameters, as `plane_through`: w1 at (0, 0),
    w2 at (|w2 - w1|, 0), theta at (<theta - w1, e1>, |rest|). The curve lies in
    the plane; its drawing coordinates are the curve's coefficients times these
    three points (`curve_xy`), recorded in info["curve"].
    """
    check_distinct(layout, w1, w2)
    try:
        sl = plane_through(layout, w1, w2, theta, labels=("w1", "w2", BEND_LABEL))
    except SpecError:
        raise SpecError(
            "slice.curve: the bend theta lies on the straight line between the endpoints (an untrained linear "
            "start): it spans no plane; use a curve checkpoint after some training, or the curve slice"
        ) from None
    points = [[m["x"], m["y"]] for m in (sl.checkpoints[0], sl.checkpoints[2], sl.checkpoints[1])]  # w1, theta, w2
    info = {"curve": {"kind": kind, "points": points}, **(info or {})}
    return dataclasses.replace(sl, kind="curve_plane", info=info)


def check_distinct(layout: StateLayout, w1: torch.Tensor, w2: torch.Tensor) -> None:
    if not torch.any((w2 - w1)[layout.param_mask()] != 0):
        raise SpecError("the curve's endpoints are identical; a curve joins two different models")


def curve_xy(kind: str, points, num: int = 201, t: np.ndarray | None = None) -> np.ndarray:
    """(num, 2) plane coordinates of the curve for drawing: coefficients (num, 3) @ points (3, 2) of w1, theta, w2."""
    t = np.linspace(0.0, 1.0, num) if t is None else np.asarray(t, dtype=np.float64)
    return curve_map(kind)(t[:, None]) @ np.asarray(points, dtype=np.float64)


# -- training ----------------------------------------------------------------------------


def init_linear(model: nn.Module, w1: dict[str, torch.Tensor], w2: dict[str, torch.Tensor]) -> None:
    """Start the bend at (w1 + w2)/2 (floats; other entries from w1): the curve then is the straight line."""
    state = {k: (w1[k].double() + w2[k].double()).div(2).to(v.dtype) if v.is_floating_point() else w1[k].clone()
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)


class CurveObjective:
    """The training loop's objective for a curve: the loss at phi_theta(t), one t ~ U[0, 1] per mini-batch.

    `model` (or its DistributedDataParallel wrapper) holds theta as its parameters;
    w1 and w2 are fixed tensors, so only theta gets gradients. The weights at t are
    formed per batch and handed to the model through functional_call; buffers are
    the model's own (BatchNorm in train mode normalizes with batch statistics and
    updates theta's running statistics, which scans re-estimate anyway: batchnorm
    recompute is the default for curves). `last_t` is the t of the latest batch.

    `weight_decay` > 0 adds Garipov et al.'s regularizer 0.5 * weight_decay * ||phi(t)||^2
    (every parameter at t, BatchNorm's affine ones included; buffers not) to the loss;
    their optimizer then has no weight decay of its own.
    """

    def __init__(self, kind: str, w1: dict[str, torch.Tensor], w2: dict[str, torch.Tensor], loss: str = "cross_entropy",
                 weight_decay: float = 0.0):
        self.map = curve_map(kind)
        self.kind = kind
        self.w1, self.w2 = w1, w2
        self.loss = loss
        self.weight_decay = weight_decay
        self.last_t = float("nan")

    def to(self, device) -> "CurveObjective":
        self.w1 = {k: v.to(device) for k, v in self.w1.items()}
        self.w2 = {k: v.to(device) for k, v in self.w2.items()}
        return self

    def weights(self, model: nn.Module, t: float) -> dict[str, torch.Tensor]:
        """Each parameter of `model` at phi(t), differentiable in theta (the parameter itself)."""
        c1, ct, c2 = (float(c) for c in self.map(np.array([[t]]))[0])
        out = {}
        for name, p in model.named_parameters():
            key = name.removeprefix("module.")  # DistributedDataParallel's prefix
            out[name] = c1 * self.w1[key] + ct * p + c2 * self.w2[key]
        return out

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator):
        t = float(torch.rand((), generator=g))
        self.last_t = t
        weights = self.weights(model, t)
        out = functional_call(model, weights, (x,))
        loss = mean_loss(out, y, self.loss)
        if self.weight_decay:
            loss = loss + 0.5 * self.weight_decay * sum(w.square().sum() for w in weights.values())
        return loss, out


def loss_at(kind: str, t: float, factory: Callable[[], nn.Module], w1: torch.Tensor, theta: torch.Tensor,
            w2: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor, loss: str = "cross_entropy",
            device: str | torch.device | None = None, bn_inputs: torch.Tensor | None = None) -> dict[str, float]:
    """Loss and accuracy at phi(t) on (inputs, targets), computed by the scan's evaluator.

    With BatchNorm, its statistics are re-estimated at phi(t) from these inputs (or
    `bn_inputs`: the training data for a test split) (batchnorm: recompute, update_bn's
    cumulative average), then it runs in eval mode: exactly what a curve scan at t
    reports with the same data.
    """
    from .evaluator import Evaluator
    from .plan import EvalOptions
    from .problem import ScanProblem

    layout = StateLayout.of(factory())
    sl = curve_slice(layout, kind, w1, theta, w2)
    sl.companions = {}
    ev = Evaluator(ScanProblem(factory, sl, inputs, targets, loss, EvalOptions(batchnorm="recompute"), bn_inputs=bn_inputs),
                   device=device)
    r = ev.evaluate(np.array([[t]]))
    return {"loss": float(r["loss"][0]), "accuracy": float(r["accuracy"][0]), "batchnorm": ev.describe()["batchnorm"]}
