"""``nn.utils.prune``: zero parts of a parameter through a mask, as PyTorch does.

Pruning ``module.weight`` moves the parameter to ``weight_orig``, keeps a buffer
``weight_mask`` and recomputes ``weight = weight_orig * weight_mask`` before every forward
(a forward pre-hook), so the optimizer still trains ``weight_orig`` and the pruned entries
stay zero in the outputs. Pruning the same tensor again prunes among the entries (or
channels) still left; ``remove`` makes the result a plain parameter again.

Example:
    >>> prune.l1_unstructured(conv, "weight", amount=0.3)   # the 30% smallest |w| go
    >>> prune.ln_structured(conv, "weight", amount=2, n=2, dim=0)  # 2 output channels go
    >>> prune.remove(conv, "weight")
"""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable

from ... import creation as C
from ... import ops as F
from ...autograd import no_grad
from ...tensor import Tensor

__all__ = [
    "BasePruningMethod", "CustomFromMask", "Identity", "L1Unstructured", "LnStructured",
    "PruningContainer", "RandomStructured", "RandomUnstructured", "custom_from_mask",
    "global_unstructured", "identity", "is_pruned", "l1_unstructured", "ln_structured",
    "random_structured", "random_unstructured", "remove",
]  # fmt: skip


def _check_amount_init(amount) -> None:
    if not isinstance(amount, numbers.Real):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
        not isinstance(amount, numbers.Integral) and not 0.0 <= float(amount) <= 1.0
    ):
        raise ValueError(
            f"amount={amount} should either be a float in the range [0, 1] or a non-negative "
            "integer"
        )


def _nparams_toprune(amount, size: int) -> int:
    n = amount if isinstance(amount, numbers.Integral) else round(amount * size)
    if n > size:
        raise ValueError(
            f"amount={amount} should be smaller than the number of parameters to prune={size}"
        )
    return int(n)


def _check_dim(t: Tensor, dim: int) -> int:
    if t.ndim <= 1:
        raise ValueError(
            "Structured pruning can only be applied to multidimensional tensors. Found tensor "
            f"of shape {tuple(t.shape)} with {t.ndim} dims"
        )
    if dim >= t.ndim or dim < -t.ndim:
        raise IndexError(f"Invalid index {dim} for tensor of size {tuple(t.shape)}")
    return dim % t.ndim


def _channel_mask(t: Tensor, dim: int, keep: Tensor) -> Tensor:
    """Ones on the channels ``keep`` (a boolean vector along ``dim``), zeros elsewhere."""
    shape = [1] * t.ndim
    shape[dim] = -1
    return C.zeros_like(t) + keep.to(t.dtype).reshape(shape)


class BasePruningMethod(ABC):
    """A way to choose a mask. Subclasses set ``PRUNING_TYPE`` (``"unstructured"``,
    ``"structured"`` or ``"global"``) and ``compute_mask(t, default_mask)``."""

    PRUNING_TYPE: str = "unstructured"
    _tensor_name: str | None = None

    def __call__(self, module, inputs) -> None:
        setattr(module, self._tensor_name, self.apply_mask(module))

    @abstractmethod
    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """The new mask for ``t``, given the mask already in place."""

    def apply_mask(self, module) -> Tensor:
        if self._tensor_name is None:
            raise RuntimeError(f"Module {module} has to be pruned")
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask")
        return mask.to(orig.dtype) * orig

    @classmethod
    def apply(cls, module, name: str, *args, importance_scores=None, **kwargs):
        """Prune ``module.<name>`` with a new ``cls(*args, **kwargs)`` (combined with the
        pruning already there); returns the method now attached to the module."""
        old, old_key = None, None
        for k, hook in list(module._forward_pre_hooks.items()):
            h = hook[0] if isinstance(hook, tuple) else hook
            if isinstance(h, BasePruningMethod) and h._tensor_name == name:
                old, old_key = h, k
        if old_key is not None:
            del module._forward_pre_hooks[old_key]
        new = cls(*args, **kwargs)
        new._tensor_name = name
        if isinstance(old, PruningContainer):
            old.add_pruning_method(new)
            method = old
        elif old is not None:
            method = PruningContainer(old)
            method.add_pruning_method(new)
        else:
            method = new
        orig = getattr(module, name)
        if importance_scores is not None and tuple(importance_scores.shape) != tuple(orig.shape):
            raise ValueError(
                f"importance_scores should have the same shape as parameter {name} of "
                f"{module}: {tuple(importance_scores.shape)} and {tuple(orig.shape)}"
            )
        scores = orig if importance_scores is None else importance_scores
        fresh = not isinstance(method, PruningContainer)
        if fresh:
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
            default_mask = C.ones_like(orig)
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()
        try:
            with no_grad():
                mask = method.compute_mask(scores.detach(), default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if fresh:
                orig = module._parameters.pop(name + "_orig")
                module.register_parameter(name, orig)
            raise
        return method

    def prune(self, t: Tensor, default_mask: Tensor | None = None, importance_scores=None):
        """``t`` with the mask applied (the module is not changed)."""
        scores = t if importance_scores is None else importance_scores
        mask = C.ones_like(t) if default_mask is None else default_mask
        return t * self.compute_mask(scores, default_mask=mask)

    def remove(self, module) -> None:
        """Make the pruning permanent: ``<name>`` is a parameter holding the masked values."""
        if self._tensor_name is None:
            raise RuntimeError(f"Module {module} has to be pruned before pruning can be removed")
        name = self._tensor_name
        with no_grad():
            weight = self.apply_mask(module)
        module.__dict__.pop(name, None)
        orig = module._parameters.pop(name + "_orig")
        orig.data = weight.detach()
        del module._buffers[name + "_mask"]
        module.register_parameter(name, orig)


class PruningContainer(BasePruningMethod):
    """The pruning methods applied in turn to one tensor; each prunes among what the earlier
    ones left."""

    def __init__(self, *args):
        self._pruning_methods: tuple = ()
        if len(args) == 1 and not isinstance(args[0], Iterable):
            self._tensor_name = args[0]._tensor_name
            self.add_pruning_method(args[0])
        elif len(args) == 1:
            for m in args[0]:
                self.add_pruning_method(m)
        else:
            for m in args:
                self.add_pruning_method(m)

    def add_pruning_method(self, method) -> None:
        if not isinstance(method, BasePruningMethod) and method is not None:
            raise TypeError(f"{type(method)} is not a BasePruningMethod subclass")
        if method is not None and self._tensor_name != method._tensor_name:
            raise ValueError(
                "Can only add pruning methods acting on the parameter named "
                f"'{self._tensor_name}' to PruningContainer {self}. Found '{method._tensor_name}'"
            )
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, idx):
        return self._pruning_methods[idx]

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        method = self._pruning_methods[-1]
        mask = default_mask.to(t.dtype)
        kind = method.PRUNING_TYPE
        if kind == "unstructured":
            keep = (default_mask == 1).reshape(-1)
            idx = F.nonzero(keep).reshape(-1)
            part = method.compute_mask(t.reshape(-1)[idx], default_mask=mask.reshape(-1)[idx])
            flat = mask.reshape(-1).clone()
            flat[idx] = part.to(flat.dtype)
            return flat.reshape(tuple(t.shape))
        if kind == "structured":
            if not hasattr(method, "dim"):
                raise AttributeError("Pruning methods of PRUNING_TYPE 'structured' need a dim")
            dim = _check_dim(t, method.dim)
            others = [d for d in range(t.ndim) if d != dim]
            keep = F.nonzero(default_mask.sum(others) != 0).reshape(-1)
            part = method.compute_mask(t.index_select(dim, keep),
                                       default_mask=mask.index_select(dim, keep))  # fmt: skip
            return mask.index_copy(dim, keep, part.to(mask.dtype))
        if kind == "global":
            return method.compute_mask(t, default_mask=mask)
        raise ValueError(f"Unrecognized PRUNING_TYPE {kind}")


def identity(module, name: str):
    """Attach a mask of ones (``<name>_orig``, ``<name>_mask``) without pruning anything."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name: str, amount):
    """Prune ``amount`` (an int count or a float fraction) entries of ``<name>`` at random."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name: str, amount, importance_scores=None):
    """Prune the ``amount`` entries of ``<name>`` of smallest magnitude (or of smallest
    ``importance_scores``)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name: str, amount, dim: int):
    """Prune ``amount`` channels of ``<name>`` along ``dim`` at random."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name: str, amount, n, dim: int, importance_scores=None):
    """Prune the ``amount`` channels along ``dim`` of smallest ``n``-norm."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name: str, mask: Tensor):
    """Prune ``<name>`` where ``mask`` is 0."""
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune the ``(module, name)`` pairs together: the mask is chosen over all their
    entries at once (e.g. the 20% smallest weights of the whole network)."""
    from . import parameters_to_vector

    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    with no_grad():
        scores = parameters_to_vector(
            [importance_scores.get((m, n), getattr(m, n)).detach() for m, n in parameters]
        )
        default = parameters_to_vector(
            [
                getattr(m, n + "_mask", None)
                if hasattr(m, n + "_mask")
                else C.ones_like(getattr(m, n))
                for m, n in parameters
            ]  # fmt: skip
        )
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(
            'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
            f"{pruning_method} of type {method.PRUNING_TYPE}"
        )
    container = PruningContainer(method)
    with no_grad():
        final = container.compute_mask(scores, default)
    offset = 0
    for module, name in parameters:
        p = getattr(module, name)
        k = p.numel()
        custom_from_mask(module, name, mask=final[offset : offset + k].reshape(tuple(p.shape)))
        offset += k


def remove(module, name: str):
    """Make ``<name>``'s pruning permanent and drop ``<name>_orig``, ``<name>_mask`` and the
    hook."""
    for k, hook in list(module._forward_pre_hooks.items()):
        h = hook[0] if isinstance(hook, tuple) else hook
        if isinstance(h, BasePruningMethod) and h._tensor_name == name:
            h.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(
        f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed"
    )


def is_pruned(module) -> bool:
    """Whether ``module`` or one of its submodules is pruned."""
    for _, sub in module.named_modules():
        for hook in sub._forward_pre_hooks.values():
            h = hook[0] if isinstance(hook, tuple) else hook
            if isinstance(h, BasePruningMethod):
                return True
    return False


from ._prune_methods import (  # noqa: E402
    CustomFromMask,
    Identity,
    L1Unstructured,
    LnStructured,
    RandomStructured,
    RandomUnstructured,
)
