"""Stochastic gradient descent with momentum (Polyak 1964; Sutskever et al. 2013)."""

from __future__ import annotations

from collections.abc import Iterable

from .. import _native, backend
from ..cuda import graphs
from ..errors import LayoutError
from ..tensor import Tensor
from . import _fused
from ._capturable import hyper
from .optimizer import Optimizer, impl_options


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Momentum as in "On the importance of initialization and momentum in deep learning"
    (Sutskever et al., 2013), in PyTorch's form: ``buf = momentum * buf + (1 - dampening)
    * g`` (``buf = g`` on the first step), then ``p -= lr * buf`` (or ``lr * (g +
    momentum * buf)`` with ``nesterov=True``).

    Args:
        params: tensors or param groups to optimize.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening of the momentum (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        nesterov: use Nesterov momentum (default False).
        maximize: maximize the objective instead of minimizing it (default False).
        capturable: read lr, momentum and dampening from device buffers, so that a step
            captured into a CUDA graph follows a scheduler's changes (default False; a
            step captured without it does the same: SGD has no step count to bake).

    Example:
        >>> opt = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    fused_step = staticmethod(_fused.sgd)  # float32 params on a GPU: one launch

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach=None,
        differentiable: bool = False,
        fused=None,
        capturable: bool = False,
    ):
        if lr < 0.0:
            raise ValueError(f"SGD: invalid learning rate {lr}; it must be >= 0")
        if momentum < 0.0:
            raise ValueError(f"SGD: invalid momentum {momentum}; it must be >= 0")
        if weight_decay < 0.0:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay}; it must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize,
            **impl_options("SGD", foreach, fused, differentiable),
        )  # fmt: skip
        super().__init__(params, defaults)
        # NOTE: not a group option: PyTorch's SGD has none (its state dicts stay alike)
        self.capturable = capturable

    def update(self, p, g, state, group):
        if self.capturable or graphs.current_capture() is not None:
            return self._update_on_device(p, g, state, group)
        if self._native_step(p, g, state, group):
            return
        xp = backend.array_module(p)
        g = self._grad(p, g, group["maximize"], group["weight_decay"])
        momentum = group["momentum"]
        if momentum != 0:
            buf_t = state.get("momentum_buffer")
            if buf_t is None:
                buf = g.copy()
                state["momentum_buffer"] = Tensor._wrap(buf, backend.device_of(buf))
            else:
                buf = buf_t._data
                buf *= momentum
                dampening = group["dampening"]
                if dampening == 0:
                    buf += g
                else:
                    t = self._tmp(p)
                    xp.multiply(g, 1 - dampening, out=t)
                    buf += t
            if group["nesterov"]:
                t = self._tmp(p)
                xp.multiply(buf, momentum, out=t)
                t += g
                g = t
            else:
                g = buf
        t = self._tmp(p)
        xp.multiply(g, -group["lr"], out=t)
        p += t

    def _native_step(self, p, g, state, group) -> bool:
        """The CPU kernel's one pass for a float32 parameter (False: NumPy's passes)."""
        buf_t = state.get("momentum_buffer") if group["momentum"] != 0 else None
        done, buf = _native.sgd_step(p, g, None if buf_t is None else buf_t._data, group)
        if done and buf_t is None and buf is not None:
            state["momentum_buffer"] = Tensor._wrap(buf, backend.device_of(buf))
        return done

    def sparse_update(self, p, grad, state, group):
        """A sparse gradient (``nn.Embedding(sparse=True)``): without momentum only its rows
        move; the momentum buffer is dense (its values are PyTorch's sparse buffer's)."""
        if group["weight_decay"] != 0:
            raise LayoutError(
                "SGD: weight_decay does not take sparse gradients (add(sparse, dense) is not "
                "supported); put the embedding in a parameter group with weight_decay=0"
            )
        lr = -group["lr"] if not group["maximize"] else group["lr"]
        if group["momentum"] == 0:
            idx = grad._indices()._data
            vals = grad._values()._data * lr
            backend.index_add(p, tuple(idx[d] for d in range(idx.shape[0])), vals)
            return
        self.update(p, grad._dense_array(), state, group)

    def _update_on_device(self, p, g, state, group):
        """The same update with lr, momentum and dampening read from device buffers."""
        xp = backend.array_module(p)
        key = id(group)
        g = self._grad(p, g, group["maximize"], group["weight_decay"])
        if group["momentum"] != 0:
            mom = hyper(self, p, (key, "momentum"), lambda: group["momentum"])
            buf_t = state.get("momentum_buffer")
            if buf_t is None:
                buf = g.copy()
                state["momentum_buffer"] = Tensor._wrap(buf, backend.device_of(buf))
            else:
                buf = buf_t._data
                buf *= mom
                if group["dampening"] == 0:
                    buf += g
                else:
                    damp = hyper(self, p, (key, "dampening"), lambda: 1 - group["dampening"])
                    t = self._tmp(p)
                    xp.multiply(g, damp, out=t)
                    buf += t
            if group["nesterov"]:
                t = self._tmp(p)
                xp.multiply(buf, mom, out=t)
                t += g
                g = t
            else:
                g = buf
        t = self._tmp(p)
        xp.multiply(g, hyper(self, p, (key, "lr"), lambda: group["lr"]), out=t)
        p -= t
