"""Adagrad (Duchi et al., 2011) and Adadelta (Zeiler, 2012)."""

from __future__ import annotations

from collections.abc import Iterable

from .. import backend
from ..errors import LayoutError
from ..tensor import Tensor
from .optimizer import Optimizer, coalesced_rows, new_step, step_up, zeros_state


def _check(name: str, **values) -> None:
    for k, v in values.items():
        if v < 0.0:
            raise ValueError(f"{name}: invalid {k} {v}; it must be >= 0")


class Adagrad(Optimizer):
    """Adagrad: per-coordinate steps scaled by the root of the summed squared gradients.

    From Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
    Stochastic Optimization" (JMLR 2011).

    Args:
        params: tensors or param groups to optimize.
        lr: learning rate (default 1e-2).
        lr_decay: the rate is ``lr / (1 + (step - 1) * lr_decay)`` (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        initial_accumulator_value: start of the squared-gradient sums (default 0).
        eps: added to the denominator for stability (default 1e-10).
        maximize: maximize the objective instead of minimizing it (default False).

    Example:
        >>> opt = mg.optim.Adagrad(model.parameters(), lr=0.01)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, fused=None):  # fmt: skip
        _check("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
               initial_accumulator_value=initial_accumulator_value)  # fmt: skip
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)  # fmt: skip
        super().__init__(params, defaults)
        # NOTE: as PyTorch, the state exists from the start (state_dict shows it)
        for group in self.param_groups:
            for p in group["params"]:
                with backend.device_scope(p._device):
                    self.state[p] = self.init_state(p._data, group)

    def init_state(self, p, group):
        xp = backend.array_module(p)
        acc = xp.full(p.shape, group["initial_accumulator_value"], p.dtype)
        return {"step": new_step(p, group), "sum": Tensor._wrap(acc, backend.device_of(p))}

    def update(self, p, g, state, group):
        xp = backend.array_module(p)
        step = step_up(state)
        g = self._grad(p, g, group["maximize"], group["weight_decay"])
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        s = state["sum"]._data
        s += g * g
        p -= clr * g / (xp.sqrt(s) + group["eps"])

    def sparse_update(self, p, grad, state, group):
        """A sparse gradient (``nn.Embedding(sparse=True)``): the sums and values of its
        rows only, from its coalesced values (as PyTorch)."""
        if group["weight_decay"] != 0:
            raise LayoutError(
                "weight_decay option is not compatible with sparse gradients; put the "
                "embedding in a parameter group with weight_decay=0"
            )
        xp = backend.array_module(p)
        step = step_up(state)
        rows, g = coalesced_rows(grad)
        if group["maximize"]:
            g = -g
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        s = state["sum"]._data
        s[rows] += g * g
        p[rows] -= clr * (g / (xp.sqrt(s[rows]) + group["eps"]))


class Adadelta(Optimizer):
    """Adadelta: steps scaled by running averages of squared updates and gradients.

    From Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (2012).

    Args:
        params: tensors or param groups to optimize.
        lr: factor on the computed step (default 1.0).
        rho: decay rate of the running averages (default 0.9).
        eps: added inside the square roots (default 1e-6).
        weight_decay: L2 penalty added to the gradient (default 0).
        maximize: maximize the objective instead of minimizing it (default False).

    Example:
        >>> opt = mg.optim.Adadelta(model.parameters())
    """

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach=None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False):  # fmt: skip
        _check("Adadelta", lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Adadelta: invalid rho {rho}; 0 <= rho <= 1")
        if capturable:
            raise NotImplementedError(
                "Adadelta: capturable=True (CUDA graph capture of step) is not supported yet; "
                "SGD, Adam and AdamW support it"
            )
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, foreach=foreach,
                        capturable=capturable, maximize=maximize,
                        differentiable=differentiable)  # fmt: skip
        super().__init__(params, defaults)

    def init_state(self, p, group):
        return {"step": new_step(p, group), "square_avg": zeros_state(p),
                "acc_delta": zeros_state(p)}  # fmt: skip

    def update(self, p, g, state, group):
        xp = backend.array_module(p)
        rho, eps = group["rho"], group["eps"]
        step_up(state)
        g = self._grad(p, g, group["maximize"], group["weight_decay"])
        sq, acc = state["square_avg"]._data, state["acc_delta"]._data
        sq *= rho
        sq += (1 - rho) * g * g
        delta = xp.sqrt(acc + eps) / xp.sqrt(sq + eps) * g
        acc *= rho
        acc += (1 - rho) * delta * delta
        p -= group["lr"] * delta
