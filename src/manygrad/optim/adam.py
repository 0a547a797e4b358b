"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .. import backend
from ..errors import LayoutError
from . import _fused
from ._capturable import F64, check_capturable, device_step, hyper
from .optimizer import Optimizer, impl_options, new_step, step_up, zeros_state


class Adam(Optimizer):
    """Adam: "Adam: A Method for Stochastic Optimization" (Kingma & Ba, ICLR 2015).

    Keeps running averages of the gradient (``exp_avg``) and of its square
    (``exp_avg_sq``), bias-corrected by the step count. ``amsgrad=True`` uses the running
    maximum of ``exp_avg_sq`` ("On the Convergence of Adam and Beyond", Reddi et al.,
    2018). ``weight_decay`` adds an L2 term to the gradient, or with
    ``decoupled_weight_decay=True`` shrinks the weights directly as AdamW does.

    Args:
        params: tensors or param groups to optimize.
        lr: learning rate (default 1e-3).
        betas: decay rates of the two averages (default (0.9, 0.999)).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: weight decay factor (default 0).
        amsgrad: use the AMSGrad variant (default False).
        maximize: maximize the objective instead of minimizing it (default False).
        decoupled_weight_decay: decay weights as AdamW (default False).
        capturable: keep the step count, lr, betas, eps, weight decay and the bias
            corrections on the device, so the step can be captured into a CUDA graph and a
            scheduler's changes reach every replay (default False).

    Example:
        >>> opt = mg.optim.Adam(model.parameters(), lr=3e-4)
    """

    fused_step = staticmethod(_fused.adam)  # float32 params on a GPU: one launch

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach=None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused=None,
        decoupled_weight_decay: bool = False,
    ):
        name = type(self).__name__
        if lr < 0.0:
            raise ValueError(f"{name}: invalid learning rate {lr}; it must be >= 0")
        if eps < 0.0:
            raise ValueError(f"{name}: invalid eps {eps}; it must be >= 0")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {b}; 0 <= beta < 1")
        if weight_decay < 0.0:
            raise ValueError(f"{name}: invalid weight_decay {weight_decay}; it must be >= 0")
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, decoupled_weight_decay=decoupled_weight_decay,
            capturable=capturable, **impl_options(name, foreach, fused, differentiable),
        )  # fmt: skip
        super().__init__(params, defaults)

    def init_state(self, p, group):
        state = {"step": new_step(p, group), "exp_avg": zeros_state(p),
                 "exp_avg_sq": zeros_state(p)}  # fmt: skip
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_state(p)
        return state

    def sparse_update(self, p, grad, state, group):
        raise LayoutError(
            "Adam does not support sparse gradients, please consider SparseAdam instead "
            "(optim.SparseAdam for the embedding's parameters, Adam or AdamW for the rest)"
        )

    def update(self, p, g, state, group):
        check_capturable(self, group)
        if group.get("capturable"):
            return self._update_on_device(p, g, state, group)
        xp = backend.array_module(p)
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        step = step_up(state)
        decoupled = group["decoupled_weight_decay"]
        if wd != 0 and decoupled:
            p *= 1 - lr * wd
        g = self._grad(p, g, group["maximize"], 0 if decoupled else wd)
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        # NOTE: m = beta1 * m + (1 - beta1) * g, written as g + beta1 * (m - g): in place,
        # no temporary.
        m -= g
        m *= beta1
        m += g
        t = self._tmp(p)
        xp.multiply(g, 1 - beta2, out=t)
        t *= g
        v *= beta2
        v += t
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"]._data
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        # NOTE: p -= lr / c1 * m / (sqrt(v) / c2 + eps), with c1, c2 the bias corrections,
        # regrouped as (lr * c2 / c1) * m / (sqrt(v) + eps * c2) to save a pass.
        c2 = math.sqrt(1 - beta2**step)
        xp.sqrt(v, out=t)
        t += group["eps"] * c2
        xp.divide(m, t, out=t)
        t *= -lr * c2 / (1 - beta1**step)
        p += t

    def _update_on_device(self, p, g, state, group):
        """The eager update with every hyperparameter and the step count on the device.

        NOTE: the same arithmetic as ``update``, value for value: per-element factors in
        the parameter's dtype (as Python floats are cast), the bias corrections in float64
        (as Python computes them), so both give the same bits.
        """
        xp = backend.array_module(p)
        key, wd = id(group), group["weight_decay"]
        step = device_step(state, p)
        step += 1
        decoupled = group["decoupled_weight_decay"]
        if wd != 0 and decoupled:
            p *= hyper(self, p, (key, "decay"), lambda: 1 - group["lr"] * group["weight_decay"])
        if group["maximize"] or (wd != 0 and not decoupled):
            out = self._tmp(g, 1)
            if wd != 0 and not decoupled:
                xp.multiply(p, hyper(self, p, (key, "wd"), lambda: group["weight_decay"]), out=out)
                if group["maximize"]:
                    out -= g
                else:
                    out += g
            else:
                xp.negative(g, out=out)
            g = out
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        m -= g
        m *= hyper(self, p, (key, "beta1"), lambda: group["betas"][0])
        m += g
        t = self._tmp(p)
        xp.multiply(g, hyper(self, p, (key, "1-beta2"), lambda: 1 - group["betas"][1]), out=t)
        t *= g
        v *= hyper(self, p, (key, "beta2"), lambda: group["betas"][1])
        v += t
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"]._data
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        b1 = hyper(self, p, (key, "beta1"), lambda: group["betas"][0], F64)
        b2 = hyper(self, p, (key, "beta2"), lambda: group["betas"][1], F64)
        lr = hyper(self, p, (key, "lr"), lambda: group["lr"], F64)
        eps = hyper(self, p, (key, "eps"), lambda: group["eps"], F64)
        c2 = xp.sqrt(1 - b2**step)
        xp.sqrt(v, out=t)
        t += (eps * c2).astype(p.dtype)
        xp.divide(m, t, out=t)
        t *= (lr * c2 / (1 - b1**step)).astype(p.dtype)
        p -= t


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay.

    From "Decoupled Weight Decay Regularization" (Loshchilov & Hutter, ICLR 2019): the
    weights shrink by ``lr * weight_decay`` each step instead of the decay entering the
    gradient averages.

    Args:
        params: tensors or param groups to optimize.
        lr: learning rate (default 1e-3).
        betas: decay rates of the two averages (default (0.9, 0.999)).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: decoupled weight decay (default 1e-2).
        amsgrad: use the AMSGrad variant (default False).
        maximize: maximize the objective instead of minimizing it (default False).
        capturable: keep the step count and hyperparameters on the device (CUDA graphs;
            default False).

    Example:
        >>> opt = mg.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        foreach=None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused=None,
    ):
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
            decoupled_weight_decay=True, capturable=capturable, foreach=foreach,
            differentiable=differentiable, fused=fused,
        )  # fmt: skip
