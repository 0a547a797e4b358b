"""RMSprop (Hinton, Lecture 6e of "Neural Networks for Machine Learning", 2012)."""

from __future__ import annotations

from collections.abc import Iterable

from .. import backend
from .optimizer import Optimizer, impl_options, new_step, step_up, zeros_state


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square of recent gradients.

    From Tieleman & Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for
    Machine Learning (2012); ``centered=True`` subtracts the squared mean gradient as in
    Graves, "Generating Sequences With Recurrent Neural Networks" (2013).

    Args:
        params: tensors or param groups to optimize.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant of the squared-gradient average (default 0.99).
        eps: added to the denominator for stability (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0).
        momentum: momentum factor (default 0).
        centered: normalize by an estimate of the gradient's variance (default False).
        maximize: maximize the objective instead of minimizing it (default False).

    Example:
        >>> opt = mg.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9)
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach=None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        if capturable:
            raise NotImplementedError(
                "RMSprop: capturable=True (CUDA graph capture of step) is not supported yet; "
                "SGD, Adam and AdamW support it"
            )
        for name, v in (("learning rate", lr), ("eps", eps), ("momentum", momentum),
                        ("weight_decay", weight_decay), ("alpha", alpha)):  # fmt: skip
            if v < 0.0:
                raise ValueError(f"RMSprop: invalid {name} {v}; it must be >= 0")
        defaults = dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
            weight_decay=weight_decay, maximize=maximize, capturable=False,
            **{k: v for k, v in impl_options("RMSprop", foreach, None, differentiable).items()
               if k != "fused"},  # NOTE: PyTorch's RMSprop has no fused option
        )  # fmt: skip
        super().__init__(params, defaults)

    def init_state(self, p, group):
        state = {"step": new_step(p, group), "square_avg": zeros_state(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_state(p)
        if group["centered"]:
            state["grad_avg"] = zeros_state(p)
        return state

    def update(self, p, g, state, group):
        xp = backend.array_module(p)
        alpha, lr, momentum = group["alpha"], group["lr"], group["momentum"]
        step_up(state)
        g = self._grad(p, g, group["maximize"], group["weight_decay"])
        sq = state["square_avg"]._data
        t = self._tmp(p)
        xp.multiply(g, 1 - alpha, out=t)
        t *= g
        sq *= alpha
        sq += t
        if group["centered"]:
            ga = state["grad_avg"]._data
            ga -= g  # NOTE: ga = alpha * ga + (1 - alpha) * g, in place
            ga *= alpha
            ga += g
            xp.multiply(ga, ga, out=t)
            xp.subtract(sq, t, out=t)
            xp.sqrt(t, out=t)
        else:
            xp.sqrt(sq, out=t)
        t += group["eps"]
        xp.divide(g, t, out=t)
        if momentum > 0:
            buf = state["momentum_buffer"]._data
            buf *= momentum
            buf += t
            xp.multiply(buf, -lr, out=t)
        else:
            t *= -lr
        p += t
