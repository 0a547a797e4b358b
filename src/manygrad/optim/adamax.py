"""Adamax (Kingma & Ba, 2015), NAdam (Dozat, 2016) and RAdam (Liu et al., 2020)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .. import backend
from .optimizer import (
    _HOST,
    Optimizer,
    host_scalar,
    new_step,
    read_scalar,
    step_up,
    write_scalar,
    zeros_state,
)


def _check(name: str, lr, eps, weight_decay, betas) -> None:
    for k, v in (("learning rate", lr), ("eps", eps), ("weight_decay", weight_decay)):
        if v < 0.0:
            raise ValueError(f"{name}: invalid {k} {v}; it must be >= 0")
    for i, b in enumerate(betas):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{name}: invalid beta parameter at index {i}: {b}; 0 <= beta < 1")


def _f32(x: float) -> float:
    """``x`` rounded to float32 (as PyTorch casts a Python scalar meeting a float32 tensor)."""
    return float(_HOST.float32(x))


def _decay(self, p, g, group, lr):
    """Weight decay: decoupled (shrink p) or as an L2 term in the gradient."""
    wd = group["weight_decay"]
    if wd != 0 and group.get("decoupled_weight_decay"):
        p *= 1 - lr * wd
        wd = 0
    return self._grad(p, g, group["maximize"], wd)


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm of past gradients in the denominator.

    From Kingma & Ba, "Adam: A Method for Stochastic Optimization" (ICLR 2015), section 7.

    Args:
        params: tensors or param groups to optimize.
        lr: learning rate (default 2e-3).
        betas: decay rates of the average and of the infinity norm (default (0.9, 0.999)).
        eps: added to the norm for stability (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        maximize: maximize the objective instead of minimizing it (default False).

    Example:
        >>> opt = mg.optim.Adamax(model.parameters())
    """

    def __init__(self, params: Iterable, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False):  # fmt: skip
        _check("Adamax", lr, eps, weight_decay, betas)
        if capturable:
            raise NotImplementedError(
                "Adamax: capturable=True (CUDA graph capture of step) is not supported yet; "
                "SGD, Adam and AdamW support it"
            )
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)  # fmt: skip
        super().__init__(params, defaults)

    def init_state(self, p, group):
        return {"step": new_step(p, group), "exp_avg": zeros_state(p), "exp_inf": zeros_state(p)}

    def update(self, p, g, state, group):
        xp = backend.array_module(p)
        beta1, beta2 = group["betas"]
        step = step_up(state)
        g = self._grad(p, g, group["maximize"], group["weight_decay"])
        m, u = state["exp_avg"]._data, state["exp_inf"]._data
        m += (1 - beta1) * (g - m)
        u *= beta2
        xp.maximum(u, xp.abs(g) + group["eps"], out=u)
        p -= group["lr"] / (1 - beta1**step) * m / u


class NAdam(Optimizer):
    """NAdam: Adam with Nesterov momentum and a momentum schedule.

    From Dozat, "Incorporating Nesterov Momentum into Adam" (ICLR workshop 2016).

    Args:
        params: tensors or param groups to optimize.
        lr: learning rate (default 2e-3).
        betas: decay rates of the two averages (default (0.9, 0.999)).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: weight decay factor (default 0).
        momentum_decay: the schedule's decay (default 4e-3).
        decoupled_weight_decay: decay weights as AdamW does (default False).
        maximize: maximize the objective instead of minimizing it (default False).

    Example:
        >>> opt = mg.optim.NAdam(model.parameters(), lr=2e-3)
    """

    def __init__(self, params: Iterable, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3, foreach=None, *,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 decoupled_weight_decay: bool = False):  # fmt: skip
        _check("NAdam", lr, eps, weight_decay, betas)
        if momentum_decay < 0.0:
            raise ValueError(f"NAdam: invalid momentum_decay {momentum_decay}; it must be >= 0")
        if capturable:
            raise NotImplementedError(
                "NAdam: capturable=True (CUDA graph capture of step) is not supported yet; "
                "SGD, Adam and AdamW support it"
            )
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable)  # fmt: skip
        super().__init__(params, defaults)

    scalar_state = ("step", "mu_product")

    def init_state(self, p, group):
        return {"step": new_step(p, group), "mu_product": host_scalar(1.0),
                "exp_avg": zeros_state(p), "exp_avg_sq": zeros_state(p)}  # fmt: skip

    def update(self, p, g, state, group):
        xp = backend.array_module(p)
        lr, eps, psi = group["lr"], group["eps"], group["momentum_decay"]
        beta1, beta2 = group["betas"]
        step = step_up(state)
        g = _decay(self, p, g, group, lr)
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
        # NOTE: as PyTorch, the product is a float32 scalar times mu rounded to float32
        write_scalar(state, "mu_product", read_scalar(state["mu_product"]) * _f32(mu))
        mu_product = read_scalar(state["mu_product"])
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * g * g
        denom = xp.sqrt(v / (1 - beta2**step)) + eps
        p -= lr * (1 - mu) / (1 - mu_product) * g / denom
        p -= lr * mu_next / (1 - mu_product * mu_next) * m / denom


class RAdam(Optimizer):
    """RAdam: Adam with the variance of the adaptive rate rectified in early steps.

    From Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond" (ICLR 2020).

    Args:
        params: tensors or param groups to optimize.
        lr: learning rate (default 1e-3).
        betas: decay rates of the two averages (default (0.9, 0.999)).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: weight decay factor (default 0).
        decoupled_weight_decay: decay weights as AdamW does (default False).
        maximize: maximize the objective instead of minimizing it (default False).

    Example:
        >>> opt = mg.optim.RAdam(model.parameters())
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, foreach=None, *,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False):  # fmt: skip
        _check("RAdam", lr, eps, weight_decay, betas)
        if capturable:
            raise NotImplementedError(
                "RAdam: capturable=True (CUDA graph capture of step) is not supported yet; "
                "SGD, Adam and AdamW support it"
            )
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        foreach=foreach, capturable=capturable,
                        differentiable=differentiable)  # fmt: skip
        super().__init__(params, defaults)

    def init_state(self, p, group):
        return {"step": new_step(p, group), "exp_avg": zeros_state(p),
                "exp_avg_sq": zeros_state(p)}  # fmt: skip

    def update(self, p, g, state, group):
        xp = backend.array_module(p)
        lr, eps = group["lr"], group["eps"]
        beta1, beta2 = group["betas"]
        step = step_up(state)
        g = _decay(self, p, g, group, lr)
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * g * g
        bc1, bc2 = 1 - beta1**step, 1 - beta2**step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * beta2**step / bc2
        if rho_t > 5.0:
            rect = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            p -= (m / bc1) * lr * (math.sqrt(bc2) / (xp.sqrt(v) + eps)) * rect
        else:
            p -= (m / bc1) * lr
