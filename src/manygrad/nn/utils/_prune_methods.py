"""The pruning methods of ``nn.utils.prune``: identity, random and L1 unstructured, random
and Ln structured, and custom masks."""

from __future__ import annotations

from ... import creation as C
from ... import ops as F
from ...tensor import Tensor
from .prune import (
    BasePruningMethod,
    _channel_mask,
    _check_amount_init,
    _check_dim,
    _nparams_toprune,
)


class Identity(BasePruningMethod):
    """Prunes nothing: a mask of ones (so that ``weight_orig`` / ``weight_mask`` exist)."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):  # type: ignore[override]
        return super().apply(module, name)


class _Unstructured(BasePruningMethod):
    """Prunes the ``amount`` entries that ``_pick(t, n)`` names (flat indices)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _check_amount_init(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        n = _nparams_toprune(self.amount, t.numel())
        mask = default_mask.clone()
        if n:
            flat = mask.reshape(-1).clone()
            flat[self._pick(t, n)] = 0
            mask = flat.reshape(tuple(t.shape))
        return mask


class RandomUnstructured(_Unstructured):
    """Prunes ``amount`` entries (a count, or a fraction of the entries) at random."""

    def _pick(self, t, n):
        return F.topk(C.rand_like(t, dtype=_float(t)).reshape(-1), n).indices

    @classmethod
    def apply(cls, module, name, amount):  # type: ignore[override]
        return super().apply(module, name, amount=amount)


class L1Unstructured(_Unstructured):
    """Prunes the ``amount`` entries of smallest magnitude."""

    def _pick(self, t, n):
        return F.topk(t.abs().reshape(-1), n, largest=False).indices

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):  # type: ignore[override]
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """Prunes ``amount`` whole channels along ``dim`` at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim: int = -1):
        _check_amount_init(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t, default_mask):
        dim = _check_dim(t, self.dim)
        size = t.shape[dim]
        n = _nparams_toprune(self.amount, size)
        if n == 0:
            return default_mask
        prob = C.rand(size, device=t.device)
        threshold = prob.sort().values[n - 1]
        return _channel_mask(t, dim, prob > threshold) * default_mask.to(t.dtype)

    @classmethod
    def apply(cls, module, name, amount, dim=-1):  # type: ignore[override]
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """Prunes the ``amount`` channels along ``dim`` of smallest ``n``-norm."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim: int = -1):
        _check_amount_init(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t, default_mask):
        dim = _check_dim(t, self.dim)
        size = t.shape[dim]
        n_prune = _nparams_toprune(self.amount, size)
        if n_prune == 0:
            return default_mask
        others = [d for d in range(t.ndim) if d != dim]
        norm = _norm(t, self.n, others)
        keep_idx = F.topk(norm, size - n_prune, largest=True).indices
        keep = C.zeros(size, dtype=_bool(), device=t.device)
        keep[keep_idx] = True
        return _channel_mask(t, dim, keep) * default_mask.to(t.dtype)

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):  # type: ignore[override]
        return super().apply(module, name, amount=amount, n=n, dim=dim,
                             importance_scores=importance_scores)  # fmt: skip


def _norm(t, n, dims):
    """``torch.norm(t, p=n, dim=dims)``."""
    a = t.abs()
    if n == float("inf"):
        return a.amax(dims)
    if n == float("-inf"):
        return a.amin(dims)
    if n == "fro" or n == 2:
        return (a * a).sum(dims).sqrt()
    if n == 0:
        return (a != 0).to(t.dtype).sum(dims)
    return a.pow(n).sum(dims).pow(1.0 / n)


class CustomFromMask(BasePruningMethod):
    """Prunes where the given mask is 0."""

    PRUNING_TYPE = "global"

    def __init__(self, mask: Tensor):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        if tuple(default_mask.shape) != tuple(self.mask.shape):
            raise ValueError(
                f"custom_from_mask: the mask's shape {tuple(self.mask.shape)} must equal the "
                f"tensor's {tuple(default_mask.shape)}"
            )
        return default_mask * self.mask.to(default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):  # type: ignore[override]
        return super().apply(module, name, mask=mask)


def _float(t):
    from ... import dtypes as D

    return t.dtype if t.dtype.is_floating_point else D.float32


def _bool():
    from ... import dtypes as D

    return D.bool_
