"""SparseAdam: Adam for sparse gradients (``nn.Embedding(sparse=True)``), as PyTorch's."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .. import backend
from ..errors import LayoutError
from .optimizer import Optimizer, coalesced_rows, zeros_state


class SparseAdam(Optimizer):
    """Adam restricted to the rows a sparse gradient holds ("lazy Adam").

    The moments are dense tensors like the parameter, but each step reads and writes only
    the rows present in the (coalesced) gradient, so rows not looked up keep their moments
    and values; the bias correction follows the parameter's step count. Dense gradients are
    refused: give the other parameters to ``Adam``.

    Args:
        params: tensors or param groups to optimize (their gradients must be sparse).
        lr: learning rate (default 1e-3).
        betas: decay rates of the first and second moments (default (0.9, 0.999)).
        eps: added to the denominator for stability (default 1e-8).
        maximize: maximize the objective instead of minimizing it (default False).

    Example:
        >>> emb = mg.nn.Embedding(1000, 64, sparse=True)
        >>> opt = mg.optim.SparseAdam(emb.parameters(), lr=1e-2)
        >>> emb(ids).sum().backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, maximize: bool = False):  # fmt: skip
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize)
        super().__init__(params, defaults)
        bad = [[i, j] for i, group in enumerate(self.param_groups)
               for j, p in enumerate(group["params"]) if p.is_complex()]  # fmt: skip
        if bad:
            raise ValueError(
                f"Complex params at indices {bad}: SparseAdam does not support complex "
                "parameters; optimize them with Adam"
            )

    # NOTE: as PyTorch's SparseAdam, the step count is a Python int (no 0-d tensor)
    scalar_state = ()

    def init_state(self, p, group):
        return {"step": 0, "exp_avg": zeros_state(p), "exp_avg_sq": zeros_state(p)}

    def update(self, p, g, state, group):
        raise LayoutError(
            "SparseAdam does not support dense gradients, please consider Adam instead "
            "(SparseAdam takes the parameters of nn.Embedding(sparse=True) and "
            "nn.EmbeddingBag(sparse=True))"
        )

    def sparse_update(self, p, grad, state, group):
        xp = backend.array_module(p)
        beta1, beta2 = group["betas"]
        state["step"] = step = int(state["step"]) + 1
        rows, g = coalesced_rows(grad)
        if group["maximize"]:
            g = -g
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        # NOTE: PyTorch's form: each moment moves by (new - old) * (1 - beta) on the rows
        old_m, old_v = m[rows], v[rows]
        dm = (g - old_m) * (1 - beta1)
        dv = (g * g - old_v) * (1 - beta2)
        m[rows] = old_m + dm
        v[rows] = old_v + dv
        denom = xp.sqrt(dv + old_v) + group["eps"]
        step_size = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
        p[rows] += -step_size * ((dm + old_m) / denom)
