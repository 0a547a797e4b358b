"""Adafactor (Shazeer & Stern, 2018) and Muon (Jordan et al., 2024), as ``torch.optim``.

Both run on device arrays without host reads: the norms that scale their steps stay 0-d
arrays on the parameter's device.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np  # host-ok: rounds Python scalars to float32 (no array work)

from .. import backend
from .optimizer import Optimizer, new_step, step_up, zeros_state


def _refuse_complex(opt: Optimizer, name: str) -> None:
    for group in opt.param_groups:
        for p in group["params"]:
            if p.grad is not None and p.is_complex():
                raise RuntimeError(f"{name} does not support complex parameters")


class Adafactor(Optimizer):
    """Adafactor: Adam-like steps whose second moment of a matrix is kept as a row and a
    column factor (memory ``m + n`` instead of ``m * n``), with a relative step size.

    From Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost"
    (ICML 2018), in PyTorch's form: tensors of 2 or more dims are factored over their last two.

    Args:
        params: tensors or param groups to optimize.
        lr: the most the relative step ``min(lr, 1/sqrt(t))`` may be (default 1e-2).
        beta2_decay: the second moment's averaging weight is ``t ** beta2_decay``
            (default -0.8).
        eps: ``(eps1, eps2)``: the floor of the second moment (None: the dtype's machine
            epsilon) and of the parameter's RMS that scales the step (default 1e-3).
        d: clipping threshold of the update's RMS (default 1.0).
        weight_decay: decoupled weight decay (default 0).
        maximize: maximize the objective instead (default False).

    Example:
        >>> opt = mg.optim.Adafactor(model.parameters(), lr=1e-2)
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps=(None, 1e-3), d: float = 1.0, weight_decay: float = 0.0, *,
                 foreach=None, maximize: bool = False):  # fmt: skip
        if not 0.0 <= lr:
            raise ValueError(f"Adafactor: learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"Adafactor: beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"Adafactor: epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"Adafactor: epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Adafactor: clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Adafactor: weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                        weight_decay=weight_decay, foreach=foreach, maximize=maximize)  # fmt: skip
        super().__init__(params, defaults)

    def step(self, closure=None):
        _refuse_complex(self, "Adafactor")
        return super().step(closure)

    def init_state(self, p, group):
        xp = backend.array_module(p)
        if p.ndim > 1:
            row, col = list(p.shape), list(p.shape)
            row[-1], col[-2] = 1, 1
            z = backend.device_of(p)
            from ..tensor import Tensor

            return {
                "step": new_step(p, group),
                "row_var": Tensor._wrap(xp.zeros(row, p.dtype), z),
                "col_var": Tensor._wrap(xp.zeros(col, p.dtype), z),
            }
        return {"step": new_step(p, group), "variance": zeros_state(p)}

    def update(self, p, g, state, group):
        xp = backend.array_module(p)
        t = step_up(state)
        lr, (eps1, eps2), d = group["lr"], group["eps"], group["d"]
        if eps1 is None:
            import ml_dtypes  # NOTE: not at import time: manygrad's import stays light

            eps1 = float(ml_dtypes.finfo(p.dtype).eps)
        if group["maximize"]:
            g = -g
        weight = float(t) ** group["beta2_decay"]  # NOTE: 1 - beta2 at step t
        rho = min(lr, 1.0 / math.sqrt(t))
        # NOTE: the step scales with the parameter's RMS before the weight decay
        alpha = xp.maximum(xp.sqrt((p * p).sum() / p.size), eps2) * rho
        if group["weight_decay"] != 0:
            p *= 1 - lr * group["weight_decay"]
        if p.ndim > 1:
            row, col = state["row_var"]._data, state["col_var"]._data
            row += weight * ((g * g).mean(axis=-1, keepdims=True) - row)
            col += weight * ((g * g).mean(axis=-2, keepdims=True) - col)
            var = row @ col
            var /= xp.maximum(row.mean(axis=-2, keepdims=True), eps1)
        else:
            v = state["variance"]._data
            v += weight * (g * g - v)
            var = v.copy()
        u = g / xp.sqrt(xp.maximum(var, eps1 * eps1))
        rms = xp.sqrt((u * u).sum() / u.size)
        denom = xp.maximum(rms / d, 1.0)
        p -= (alpha / denom).astype(p.dtype) * u


def _lerp(xp, a, b, w: float):
    """``a + w (b - a)`` as PyTorch's CPU computes it: from the nearer end, with one
    rounding of the multiply-add (a fused multiply-add, here through float64). The
    bfloat16 iteration after it turns a last-bit difference into a visible one."""
    f32 = a.dtype == np.float32
    wide = np.float64 if f32 else a.dtype
    d = b - a  # rounded to a's dtype, as PyTorch does
    if abs(w) < 0.5:
        out = a.astype(wide) + (float(np.float32(w)) if f32 else w) * d.astype(wide)
    else:
        w1 = float(np.float32(1 - w)) if f32 else 1 - w
        out = b.astype(wide) - w1 * d.astype(wide)
    return out.astype(a.dtype)


def _round_bf16(xp, a):
    """``a`` (float32) rounded to bfloat16's 8-bit mantissa (to nearest, ties to even),
    kept in float32: the same on NumPy and CuPy arrays."""
    u = a.astype(xp.float32).view(xp.uint32)
    odd = xp.bitwise_and(xp.right_shift(u, xp.uint32(16)), xp.uint32(1))
    u = xp.bitwise_and(u + xp.uint32(0x7FFF) + odd, xp.uint32(0xFFFF0000))
    return u.view(xp.float32)


def newton_schulz(xp, grad, coefficients, steps: int, eps: float):
    """The Newton-Schulz iteration Muon orthogonalizes its update with, in bfloat16
    arithmetic (float32 products, each result rounded to bfloat16, as PyTorch's CPU)."""
    if steps >= 100:
        raise ValueError("Muon: ns_steps must be less than 100 for computational efficiency")
    if grad.ndim != 2:
        raise ValueError("Muon: the gradient must be a 2-D matrix")
    if len(coefficients) != 3:
        raise ValueError("Muon: ns_coefficients must be a tuple of exactly 3 values")
    a, b, c = coefficients
    x = _round_bf16(xp, grad)
    tall = grad.shape[0] > grad.shape[1]
    if tall:
        x = x.T
    norm = _round_bf16(xp, xp.sqrt((x * x).sum()).reshape(1))[0]
    x = _round_bf16(xp, x / xp.maximum(norm, eps))
    for _ in range(steps):
        gram = _round_bf16(xp, x @ x.T)
        upd = _round_bf16(xp, b * gram + c * (gram @ gram))
        x = _round_bf16(xp, a * x + upd @ x)
    return x.T if tall else x


class Muon(Optimizer):
    """Muon: SGD with momentum whose update, a matrix, is replaced by its nearest
    orthogonal matrix (approximately, by a Newton-Schulz iteration in bfloat16).

    From Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024),
    in PyTorch's form. Only 2-D parameters; train embeddings, biases and heads with AdamW.

    Args:
        params: 2-D tensors or param groups to optimize.
        lr: learning rate (default 1e-3).
        weight_decay: decoupled weight decay (default 0.1).
        momentum: momentum factor (default 0.95).
        nesterov: Nesterov momentum (default True).
        ns_coefficients: the iteration's quintic coefficients (default (3.4445, -4.775,
            2.0315)).
        eps: floor of the norm the update is divided by first (default 1e-7).
        ns_steps: iterations (default 5).
        adjust_lr_fn: ``"original"`` (default: ``lr * sqrt(max(1, rows/cols))``) or
            ``"match_rms_adamw"`` (``0.2 * lr * sqrt(max(rows, cols))``).

    Example:
        >>> opt = mg.optim.Muon([p for p in model.parameters() if p.ndim == 2])
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients=(3.4445, -4.7750, 2.0315), eps: float = 1e-7,
                 ns_steps: int = 5, adjust_lr_fn: str | None = None):  # fmt: skip
        if not 0.0 <= lr:
            raise ValueError(f"Muon: learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"Muon: momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Muon: weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"Muon: adjust_lr_fn {adjust_lr_fn!r} is not supported; use "
                             "'original' or 'match_rms_adamw'")  # fmt: skip
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps,
                        adjust_lr_fn=adjust_lr_fn)  # fmt: skip
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(
                        "Muon only supports 2D parameters whereas we found a parameter with "
                        f"size: {tuple(p.shape)}; optimize the others with AdamW"
                    )

    def step(self, closure=None):
        _refuse_complex(self, "Muon")
        return super().step(closure)

    def init_state(self, p, group):
        return {"momentum_buffer": zeros_state(p)}

    def update(self, p, g, state, group):
        xp = backend.array_module(p)
        mu, lr = group["momentum"], group["lr"]
        buf = state["momentum_buffer"]._data
        buf[...] = _lerp(xp, buf, g, 1 - mu)
        upd = _lerp(xp, g, buf, mu) if group["nesterov"] else buf
        o = newton_schulz(xp, upd.astype(xp.float32), group["ns_coefficients"],
                          group["ns_steps"], group["eps"])  # fmt: skip
        rows, cols = p.shape[:2]
        fn = group["adjust_lr_fn"]
        if fn in (None, "original"):
            ratio = math.sqrt(max(1.0, rows / cols))
        else:
            ratio = 0.2 * math.sqrt(max(rows, cols))
        p *= 1 - lr * group["weight_decay"]
        p -= (lr * ratio * o).astype(p.dtype)
