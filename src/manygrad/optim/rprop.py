"""Rprop (Riedmiller & Braun, 1993) and ASGD (Polyak & Juditsky, 1992)."""

from __future__ import annotations

from collections.abc import Iterable

from .. import backend
from ..tensor import Tensor
from .optimizer import (
    Optimizer,
    host_scalar,
    new_step,
    read_scalar,
    step_up,
    write_scalar,
    zeros_state,
)


class Rprop(Optimizer):
    """Rprop: per-coordinate step sizes that grow while the gradient keeps its sign and
    shrink when it flips; only the gradient's sign is used.

    From Riedmiller & Braun, "A Direct Adaptive Method for Faster Backpropagation
    Learning: The RPROP Algorithm" (ICNN 1993).

    Args:
        params: tensors or param groups to optimize.
        lr: initial step size (default 1e-2).
        etas: (decrease, increase) factors (default (0.5, 1.2)).
        step_sizes: (minimal, maximal) step size (default (1e-6, 50)).
        maximize: maximize the objective instead of minimizing it (default False).

    Example:
        >>> opt = mg.optim.Rprop(model.parameters())
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50),
                 *, capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False):  # fmt: skip
        if lr < 0.0:
            raise ValueError(f"Rprop: invalid learning rate {lr}; it must be >= 0")
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Rprop: invalid etas {etas}; need 0 < etaminus < 1 < etaplus")
        if capturable:
            raise NotImplementedError(
                "Rprop: capturable=True (CUDA graph capture of step) is not supported yet; "
                "SGD, Adam and AdamW support it"
            )
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), foreach=foreach,
                        maximize=maximize, differentiable=differentiable,
                        capturable=capturable)  # fmt: skip
        super().__init__(params, defaults)

    def init_state(self, p, group):
        xp = backend.array_module(p)
        size = Tensor._wrap(xp.full(p.shape, group["lr"], p.dtype), backend.device_of(p))
        return {"step": new_step(p, group), "prev": zeros_state(p), "step_size": size}

    def update(self, p, g, state, group):
        xp = backend.array_module(p)
        etaminus, etaplus = group["etas"]
        lo, hi = group["step_sizes"]
        step_up(state)
        if group["maximize"]:
            g = -g
        prev, size = state["prev"]._data, state["step_size"]._data
        s = xp.sign(g * prev)
        factor = xp.where(s > 0, etaplus, xp.where(s < 0, etaminus, 1.0)).astype(p.dtype)
        size *= factor
        xp.clip(size, lo, hi, out=size)
        g = xp.where(s < 0, 0, g).astype(p.dtype)  # NOTE: a flipped sign skips this step
        p -= xp.sign(g) * size
        prev[...] = g


class ASGD(Optimizer):
    """Averaged SGD: SGD with a decaying rate and a running average of the iterates
    (``ax`` in the state).

    From Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging"
    (SIAM J. Control and Optimization, 1992).

    Args:
        params: tensors or param groups to optimize.
        lr: learning rate (default 1e-2).
        lambd: decay term (default 1e-4).
        alpha: power of the rate's decay (default 0.75).
        t0: step from which averaging starts (default 1e6).
        weight_decay: L2 penalty added to the gradient (default 0).
        maximize: maximize the objective instead of minimizing it (default False).

    Example:
        >>> opt = mg.optim.ASGD(model.parameters(), lr=0.01)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0, foreach=None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False):  # fmt: skip
        for k, v in (("learning rate", lr), ("weight_decay", weight_decay)):
            if v < 0.0:
                raise ValueError(f"ASGD: invalid {k} {v}; it must be >= 0")
        if capturable:
            raise NotImplementedError(
                "ASGD: capturable=True (CUDA graph capture of step) is not supported yet; "
                "SGD, Adam and AdamW support it"
            )
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)  # fmt: skip
        super().__init__(params, defaults)

    scalar_state = ("step", "eta", "mu")

    def init_state(self, p, group):
        # NOTE: PyTorch keeps step, eta and mu on the parameter's device; they stay on the
        # CPU here, where the update reads them without a device sync
        return {"step": new_step(p, group), "eta": host_scalar(float(group["lr"])),
                "mu": host_scalar(1.0), "ax": zeros_state(p)}  # fmt: skip

    def update(self, p, g, state, group):
        lr, lambd = group["lr"], group["lambd"]
        step = step_up(state)
        g = self._grad(p, g, group["maximize"], group["weight_decay"])
        eta, mu = read_scalar(state["eta"]), read_scalar(state["mu"])
        p *= 1 - lambd * eta
        p -= eta * g
        ax = state["ax"]._data
        if mu != 1:
            ax += (p - ax) * mu
        else:
            ax[...] = p
        write_scalar(state, "eta", lr / ((1 + lambd * lr * step) ** group["alpha"]))
        write_scalar(state, "mu", 1 / max(1, step - group["t0"]))
