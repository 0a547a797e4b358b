"""``nn.utils.weight_norm`` (Salimans & Kingma, 2016) and ``nn.utils.spectral_norm``
(Miyato et al., 2018), the hook-based forms: the weight is recomputed from its parts before
every forward, with PyTorch's parameter and buffer names (``weight_g``/``weight_v``;
``weight_orig``/``weight_u``/``weight_v``), so that state dicts interchange.

Example:
    >>> conv = mg.nn.utils.weight_norm(mg.nn.Conv1d(8, 8, 3))
    >>> d = mg.nn.utils.spectral_norm(mg.nn.Linear(20, 40))
"""

from __future__ import annotations

import warnings

from ...autograd import no_grad
from ...tensor import Tensor
from ..parameter import Parameter


def _norm_except_dim(v: Tensor, dim) -> Tensor:
    """The 2-norm of ``v`` over every dim but ``dim`` (kept as size-1 dims)."""
    if dim is None:
        return v.norm()
    dims = tuple(d for d in range(v.ndim) if d != dim % v.ndim)
    return (v * v).sum(dims, keepdim=True).sqrt()


class WeightNorm:
    """The forward pre-hook of ``weight_norm``: ``weight = g * v / ||v||``."""

    def __init__(self, name: str, dim):
        self.name, self.dim = name, dim

    def compute_weight(self, module) -> Tensor:
        g, v = getattr(module, self.name + "_g"), getattr(module, self.name + "_v")
        return v * (g / _norm_except_dim(v, self.dim))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name: str = "weight", dim: int | None = 0):
    """Reparameterize ``module.<name>`` as a magnitude ``<name>_g`` and a direction
    ``<name>_v`` (``dim``: the dim kept by the norm; None for one norm of the whole).
    Deprecated, as in PyTorch (a FutureWarning): ``nn.utils.parametrizations.weight_norm``
    is the newer form."""
    warnings.warn(
        "`nn.utils.weight_norm` is deprecated in favor of `nn.utils.parametrizations.weight_norm`.",
        FutureWarning,
        stacklevel=2,
    )
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == name:
            raise RuntimeError(
                f"Cannot register two weight_norm hooks on the same parameter {name}"
            )
    weight = getattr(module, name)
    if dim is not None and dim < -1:
        dim += weight.ndim
    fn = WeightNorm(name, dim)
    del module._parameters[name]
    module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight, dim).detach()))
    module.register_parameter(name + "_v", Parameter(weight.detach()))
    setattr(module, name, fn.compute_weight(module))
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module, name: str = "weight"):
    """Undo ``weight_norm``: ``<name>`` is a plain parameter again, of the current value."""
    for key, hook in list(module._forward_pre_hooks.items()):
        fn = hook
        if isinstance(fn, WeightNorm) and fn.name == name:
            weight = fn.compute_weight(module).detach()
            del module._forward_pre_hooks[key]
            del module._parameters[name + "_g"], module._parameters[name + "_v"]
            if name in module.__dict__:
                del module.__dict__[name]
            module.register_parameter(name, Parameter(weight))
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")


def _normalize(x: Tensor, eps: float) -> Tensor:
    return x / x.norm().clamp(min=eps)


class SpectralNorm:
    """The forward pre-hook of ``spectral_norm``: ``weight = weight_orig / sigma``, with
    ``sigma`` from power iterations kept in the buffers ``weight_u`` and ``weight_v`` (updated
    in training mode only)."""

    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float):
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but got "
                f"n_power_iterations={n_power_iterations}"
            )
        self.name, self.n, self.dim, self.eps = name, n_power_iterations, dim, eps

    def matrix(self, w: Tensor) -> Tensor:
        if self.dim != 0:
            w = w.movedim(self.dim, 0)
        return w.reshape(w.shape[0], -1)

    def compute_weight(self, module, do_power_iteration: bool) -> Tensor:
        w = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        mat = self.matrix(w)
        if do_power_iteration:
            with no_grad():
                m = mat.detach()
                for _ in range(self.n):
                    v.copy_(_normalize(m.T @ u, self.eps))
                    u.copy_(_normalize(m @ v, self.eps))
            u, v = u.clone(), v.clone()  # NOTE: the graph keeps these values
        sigma = (u * (mat @ v)).sum()
        return w / sigma

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, module.training))


def spectral_norm(module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None):  # fmt: skip
    """Divide ``module.<name>`` by its largest singular value (estimated by power iteration)
    before every forward; ``dim`` defaults to 1 for transposed convolutions, else 0."""
    from ..conv import _ConvTransposeNd

    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            raise RuntimeError(
                f"Cannot register two spectral_norm hooks on the same parameter {name}"
            )
    if dim is None:
        dim = 1 if isinstance(module, _ConvTransposeNd) else 0
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    weight = getattr(module, name)
    with no_grad():
        mat = fn.matrix(weight)
        h, w = mat.shape
        u = _normalize(weight.new_empty(h).normal_(0, 1), eps)
        v = _normalize(weight.new_empty(w).normal_(0, 1), eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module, name: str = "weight"):
    """Undo ``spectral_norm``: ``<name>`` is a plain parameter of the normalized value."""
    for key, hook in list(module._forward_pre_hooks.items()):
        fn = hook
        if isinstance(fn, SpectralNorm) and fn.name == name:
            weight = fn.compute_weight(module, False).detach()
            del module._forward_pre_hooks[key]
            del module._parameters[name + "_orig"]
            del module._buffers[name + "_u"], module._buffers[name + "_v"]
            if name in module.__dict__:
                del module.__dict__[name]
            module.register_parameter(name, Parameter(weight))
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")


__all__ = ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"]
