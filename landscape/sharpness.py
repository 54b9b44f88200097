"""Sharpness numbers: the largest loss increase within a small neighbourhood of a point, by projected ascent.

Keskar et al. 2017 ("On Large-Batch Training for Deep Learning", Metric 2.1), in
the full space (their A = I):

    C_eps = { z : |z_i| <= eps (|x_i| + 1) }
    phi(x, eps) = (max_{z in C_eps} f(x + z) - f(x)) / (1 + f(x)) x 100

The box scales with each weight (|x_i| + 1), so the number does not depend on
how a layer happens to be scaled. Kwon et al. 2021 (ASAM) make the neighbourhood
adaptive in the same spirit, with a Euclidean ball in normalized coordinates:

    T_x = diag(|x_i| + eta),   S(x, rho) = max_{||T_x^-1 z||_2 <= rho} f(x + z) - f(x)

Both maxima are found by projected ascent from the first-order maximizer (the
point where the linearized loss is largest: z = r sign(g) for the box, z = rho
T^2 g / ||T g|| for the ball), then `steps` steepest-ascent steps in the set's
own norm (sign steps scaled by the box's half-widths; normalized gradient steps
in u = T^-1 z), each projected back (clamp to the box; rescale onto the ball).
The best point seen is kept, so more steps never lower the value. Keskar et al.
solved the box problem with 10 iterations of L-BFGS-B; any ascent gives a lower
bound of the true maximum, which is what both papers report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

LossGrad = Callable[[torch.Tensor], tuple[float, torch.Tensor]]  # flat (P,) -> (loss, gradient (P,))


@dataclass
class Ascent:
    """The best point an ascent found: loss there, its offset z (P,), and the loss after each step."""

    base: float  # f(x)
    best: float  # max f(x + z) found
    offset: torch.Tensor  # (P,) the z of `best`
    losses: list[float] = field(default_factory=list)  # f after each step (the first: the first-order maximizer)

    @property
    def increase(self) -> float:
        return self.best - self.base


def _direction(g: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The gradient, or (zero gradient: at an exact stationary point) a seeded random Rademacher vector."""
    if bool(torch.any(g != 0)):
        return g
    return (torch.randint(0, 2, g.shape, generator=generator).float() * 2 - 1).to(g.device)


def box_ascent(f: LossGrad, x: torch.Tensor, radius: torch.Tensor, steps: int, step_size: float = 0.5,
               seed: int = 0) -> Ascent:
    """max f(x + z) over |z_i| <= radius_i (entries of radius may be 0: fixed), by projected sign ascent."""
    g0 = torch.Generator().manual_seed(seed)
    base, grad = f(x)
    z = radius * torch.sign(_direction(grad, g0))  # the linearized maximizer: a corner of the box
    best = Ascent(base, float("-inf"), z.clone())
    for _ in range(steps + 1):
        loss, grad = f(x + z)
        best.losses.append(loss)
        if loss > best.best:
            best.best, best.offset = loss, z.clone()
        z = torch.clamp(z + step_size * radius * torch.sign(grad), -radius, radius)
    return best


def ball_ascent(f: LossGrad, x: torch.Tensor, scale: torch.Tensor, rho: float, steps: int, step_size: float = 0.5,
                seed: int = 0) -> Ascent:
    """max f(x + scale * u) over ||u||_2 <= rho, by projected normalized gradient ascent in u."""
    g0 = torch.Generator().manual_seed(seed)
    base, grad = f(x)

    def unit(v):
        n = v.norm()
        return v / n if n > 0 else v

    u = rho * unit(scale * _direction(grad, g0))  # the linearized maximizer (ASAM's step)
    best = Ascent(base, float("-inf"), scale * u)
    for _ in range(steps + 1):
        loss, grad = f(x + scale * u)
        best.losses.append(loss)
        if loss > best.best:
            best.best, best.offset = loss, scale * u
        u = u + step_size * rho * unit(scale * grad)
        n = u.norm()
        if n > rho:
            u = u * (rho / n)
    return best


def keskar_radius(x: torch.Tensor, epsilon: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(P,) half-widths eps (|x_i| + 1) of Keskar et al.'s box (0 outside `mask`)."""
    r = epsilon * (x.abs() + 1)
    return r if mask is None else r * mask


def epsilon_sharpness(f: LossGrad, x: torch.Tensor, epsilon: float, steps: int = 20, mask=None, seed: int = 0) -> tuple[float, Ascent]:
    """(Keskar et al.'s phi in percent, the ascent)."""
    a = box_ascent(f, x, keskar_radius(x, epsilon, mask), steps, seed=seed)
    return 100.0 * a.increase / (1.0 + a.base), a


def adaptive_sharpness(f: LossGrad, x: torch.Tensor, rho: float, eta: float = 0.01, steps: int = 20, mask=None,
                       seed: int = 0) -> tuple[float, Ascent]:
    """(Kwon et al.'s adaptive sharpness max f(x + z) - f(x) over ||z / (|x| + eta)||_2 <= rho, the ascent)."""
    scale = x.abs() + eta
    if mask is not None:
        scale = scale * mask
    a = ball_ascent(f, x, scale, rho, steps, seed=seed)
    return a.increase, a


def loss_and_gradient(op) -> LossGrad:
    """f(flat) and its gradient for a `hessian.HessianOperator`'s loss (the scan's loss, full batch, in chunks)."""

    def f(flat: torch.Tensor) -> tuple[float, torch.Tensor]:
        flat = flat.detach().to(op.device).requires_grad_()
        total, grad = 0.0, torch.zeros_like(flat)
        with torch.enable_grad():
            for s, e in op.chunks:
                part = op.chunk_loss(flat, s, e)
                (g,) = torch.autograd.grad(part, flat)
                total += float(part.detach())
                grad += g
        return total, grad

    return f
