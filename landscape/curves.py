"""Mode-connecting curves (Garipov et al. 2018): geometry, slices, and the training objective.

A curve joins two trained models w1, w2 through k >= 1 trained bends theta_1 .. theta_k (num_bends; one by default):
- bezier: the Bezier curve of degree k + 1 over the control points (w1, theta_1 .. theta_k, w2), Bernstein
  coefficients; one bend: phi(t) = (1-t)^2 w1 + 2t(1-t) theta + t^2 w2
- polychain: w1 -> theta_1 -> .. -> theta_k -> w2, linear between, theta_i at t = i / (k + 1).
Both are combinations of the basis (w1, theta_1 .. theta_k, w2) with coefficients from
`coefmaps.BezierMap` / `PolychainMap`; the straight line is `ChordMap`. The same
coefficients move every float entry of the state (weights and BatchNorm running
statistics), as line_between and plane_through do, so w1, w2 (and the chain's
vertices) are reproduced bit for bit. `theta` arguments are (P,) for one bend or (k, P).

Two slices: `curve` (1D, t in [0, 1], with the straight line between the same
endpoints as a companion path) and `curve_plane` (the plane through w1, w2 and
theta, Garipov et al.'s basis, with the curve's coordinates recorded for drawing; one bend only).
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


def curve_map(kind: str, bends: int = 1) -> CoefMap:
    if kind not in CURVE_MAPS:
        raise SpecError(f"unknown curve kind {kind!r}; expected one of {', '.join(CURVE_KINDS)}")
    return CURVE_MAPS[kind](bends=bends)


def coefficients(kind: str, t: float, bends: int = 1) -> tuple[float, ...]:
    """(c_w1, c_theta_1 .. c_theta_k, c_w2) of phi(t), float64."""
    return tuple(float(c) for c in curve_map(kind, bends)(np.array([[float(t)]]))[0])


def bends_of(theta: torch.Tensor) -> torch.Tensor:
    """(k, P): one bend's (P,) as one row, k bends' (k, P) as they are."""
    return theta.reshape(1, -1) if theta.dim() == 1 else theta


def basis(w1: torch.Tensor, theta: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """(k + 2, P) fp32: the curve's basis w1, theta_1 .. theta_k, w2, one flat state vector per row."""
    return torch.cat([w1.float()[None], bends_of(theta).float(), w2.float()[None]])


def phi(kind: str, t: float, w1: torch.Tensor, theta: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """(P,) the flat state at t, formed exactly as the evaluator forms a grid point of a curve scan."""
    b = basis(w1, theta, w2)
    return combine(torch.zeros_like(b[0]), b, coefficients(kind, t, len(b) - 2))


def bend_labels(bends: int) -> list[str]:
    return [BEND_LABEL] if bends == 1 else [f"θ{i} (bend {i})" for i in range(1, bends + 1)]


# -- slices ------------------------------------------------------------------------------


def _mark(label: str, x: float, y: float | None = None) -> dict:
    return {"label": label, "x": float(x), "y": None if y is None else float(y)}


def curve_slice(layout: StateLayout, kind: str, w1: torch.Tensor, theta: torch.Tensor, w2: torch.Tensor,
                info: dict | None = None) -> Slice:
    """The curve as a 1D slice over t, with the straight line w1 -> w2 as the companion "line" (alpha = t)."""
    check_distinct(layout, w1, w2)
    b = basis(w1, theta, w2)
    k = len(b) - 2
    marks = [_mark("w1", 0.0), _mark("w2", 1.0)]
    if kind == "polychain":  # the chain's vertices lie on the curve
        marks[1:1] = [_mark(label, i / (k + 1)) for i, label in enumerate(bend_labels(k), 1)]
    bends = {"num_bends": k} if k > 1 else {}  # one bend recorded as before
    return Slice("curve", layout, torch.zeros_like(b[0]), b, marks, curve_map(kind, k),
                 info={"curve_kind": kind, **bends,
                       "companions": {"line": "the straight line between the same endpoints (alpha = t)"}, **(info or {})},
                 companions={"line": ChordMap(bends=k)})


def curve_plane(layout: StateLayout, kind: str, w1: torch.Tensor, theta: torch.Tensor, w2: torch.Tensor,
                info: dict | None = None) -> Slice:
    """The plane through w1, w2 and theta: origin w1, e1 along w2 - w1, e2 the Gram-Schmidt of theta - w1.

    Euclidean coordinates over the parameters, as `plane_through`: w1 at (0, 0),
    w2 at (|w2 - w1|, 0), theta at (<theta - w1, e1>, |rest|). The curve lies in
    the plane; its drawing coordinates are the curve's coefficients times these
    three points (`curve_xy`), recorded in info["curve"].
    """
    check_distinct(layout, w1, w2)
    if bends_of(theta).shape[0] > 1:  # their plane.py takes points 0, 1, 2 as w1, theta, w2: right for one bend only
        raise SpecError(
            f"slice.kind curve_plane: the plane through w1, w2 and the bend is defined for a curve of one bend; this one "
            f"has {bends_of(theta).shape[0]} (num_bends): scan it with slice kind curve, or train a curve with num_bends: 1"
        )
    theta = bends_of(theta)[0]
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
    """(num, 2) plane coordinates of the curve for drawing: coefficients (num, k + 2) @ points (k + 2, 2) of
    w1, the bends, w2."""
    t = np.linspace(0.0, 1.0, num) if t is None else np.asarray(t, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    return curve_map(kind, len(points) - 2)(t[:, None]) @ points


# -- training ----------------------------------------------------------------------------


def init_on_line(model: nn.Module, w1: dict[str, torch.Tensor], w2: dict[str, torch.Tensor], a: float = 0.5) -> None:
    """Put the model at (1 - a) w1 + a w2 (floats, in float64, then the model's dtype; other entries from w1):
    Garipov et al.'s linear start of bend i of k at a = i / (k + 1); one bend at (w1 + w2)/2."""
    state = {k: ((1 - a) * w1[k].double() + a * w2[k].double()).to(v.dtype) if v.is_floating_point() else w1[k].clone()
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)


def init_linear(model: nn.Module, w1: dict[str, torch.Tensor], w2: dict[str, torch.Tensor]) -> None:
    """Start a single bend at (w1 + w2)/2: the curve then is the straight line."""
    init_on_line(model, w1, w2, 0.5)


def init_bends(factory: Callable[[], nn.Module], w1: dict, w2: dict, bends: int, init: str) -> list[nn.Module]:
    """The k bends' starting models. linear: bend i on the straight line at i / (k + 1) (Garipov et al.'s
    init_linear); random: bend i at the model's seeded initialization with seed model.seed + i - 1 (the first at
    model.seed itself), so the bends start apart (their --init_linear_off)."""
    out = []
    for i in range(1, bends + 1):
        if init == "linear" or i == 1:
            model = factory()
        else:
            model = dataclasses.replace(factory, seed=(factory.seed + i - 1) % 2**63)()
        if init == "linear":
            init_on_line(model, w1, w2, i / (bends + 1))
        out.append(model)
    return out


class CurvePoints(nn.Module):
    """The points of a curve that train: the bends theta_1 .. theta_k, and w1 (`start`) / w2 (`end`) when they train
    too (Garipov et al.'s fix_start / fix_end false). One module for the optimizer and for DistributedDataParallel;
    its forward is the first bend's, whose parameters `CurveObjective` replaces by phi(t) (its buffers, BatchNorm's
    running statistics, are the curve's). With one bend and fixed endpoints its parameters are the bend's, in order."""

    def __init__(self, bends: list[nn.Module], start: nn.Module | None = None, end: nn.Module | None = None):
        super().__init__()
        self.bends = nn.ModuleList(bends)
        self.start, self.end = start, end

    def forward(self, x):
        return self.bends[0](x)


class CurveObjective:
    """The training loop's objective for a curve: the loss at phi(t), one t ~ U[0, 1] per mini-batch.

    `model` (or its DistributedDataParallel wrapper) is a `CurvePoints` (or a plain model: the one bend of a curve
    with fixed endpoints); w1 and w2 are fixed tensors unless the model holds them as `start` / `end`, so only the
    points it holds get gradients. The weights at t are formed per batch and handed to the model through
    functional_call; buffers are the first bend's (BatchNorm in train mode normalizes with batch statistics and
    updates the bend's running statistics, which scans re-estimate anyway: batchnorm recompute is the default for
    curves). `last_t` is the t of the latest batch.

    `weight_decay` > 0 adds Garipov et al.'s regularizer 0.5 * weight_decay * ||phi(t)||^2
    (every parameter at t, BatchNorm's affine ones included; buffers not) to the loss;
    their optimizer then has no weight decay of its own.
    """

    def __init__(self, kind: str, w1: dict[str, torch.Tensor], w2: dict[str, torch.Tensor], loss: str = "cross_entropy",
                 weight_decay: float = 0.0, bends: int = 1):
        self.map = curve_map(kind, bends)
        self.kind, self.bends = kind, bends
        self.w1, self.w2 = w1, w2
        self.loss = loss
        self.weight_decay = weight_decay
        self.last_t = float("nan")

    def to(self, device) -> "CurveObjective":
        self.w1 = {k: v.to(device) for k, v in self.w1.items()}
        self.w2 = {k: v.to(device) for k, v in self.w2.items()}
        return self

    def weights(self, model: nn.Module, t: float) -> dict[str, torch.Tensor]:
        """Each parameter of the first bend at phi(t), differentiable in every point the model holds:
        sum_j c_j(t) p_j over (w1, theta_1 .. theta_k, w2), summed in that order."""
        coefs = [float(c) for c in self.map(np.array([[t]]))[0]]
        params = dict(model.named_parameters())
        pre = "module." if next(iter(params)).startswith("module.") else ""  # DistributedDataParallel's prefix
        carrier = pre + "bends.0."
        plain = not any(n.startswith(carrier) for n in params)  # a plain model: the one bend, fixed endpoints
        if plain:
            if self.bends != 1:
                raise ValueError("a plain model is one bend; give a CurvePoints for a curve of several bends")
            carrier = pre
        out = {}
        for name, p in params.items():
            if not name.startswith(carrier):
                continue
            key = name[len(carrier):]
            if plain:
                points = [self.w1[key], p, self.w2[key]]
            else:
                points = [params.get(f"{pre}start.{key}", self.w1[key]),
                          *(params[f"{pre}bends.{i}.{key}"] for i in range(self.bends)),
                          params.get(f"{pre}end.{key}", self.w2[key])]
            w = coefs[0] * points[0]
            for c, q in zip(coefs[1:], points[1:]):
                w = w + c * q
            out[name] = w
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
