"""More of PyTorch's top-level names: ``torch.selu``, ``torch.pdist``, ``torch.conv3d`` and the
other ``nn.functional`` ops PyTorch also exposes at the top, the ``*_copy`` forms of the view
ops (a view, then a copy), low-rank SVD/PCA, ``torch.binomial`` and the anomaly switches.

Re-exported as ``manygrad.<name>``.

Example:
    >>> mg.selu(mg.tensor([-1.0, 1.0]))
    >>> mg.transpose_copy(x, 0, 1)        # x.transpose(0, 1) as a new tensor
"""

from __future__ import annotations

from ..tensor import Tensor


def _F():  # noqa: N802
    from ..nn import functional

    return functional


# ---------------------------------------------------------------------------- nn ops on top


def selu(input: Tensor) -> Tensor:  # noqa: A002
    return _F().selu(input)


def selu_(input: Tensor) -> Tensor:  # noqa: A002
    return _F().selu(input, inplace=True)


def celu(input: Tensor, alpha: float = 1.0) -> Tensor:  # noqa: A002
    return _F().celu(input, alpha)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:  # noqa: A002
    return _F().celu(input, alpha, inplace=True)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,  # noqa: A002
          training: bool = False, generator=None) -> Tensor:  # fmt: skip
    return _F().rrelu(input, lower, upper, training)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,  # noqa: A002
           training: bool = False, generator=None) -> Tensor:  # fmt: skip
    return _F().rrelu(input, lower, upper, training, inplace=True)


def prelu(input: Tensor, weight: Tensor) -> Tensor:  # noqa: A002
    return _F().prelu(input, weight)


def threshold(input: Tensor, threshold: float, value: float) -> Tensor:  # noqa: A002
    return _F().threshold(input, threshold, value)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:  # noqa: A002
    return _F().threshold(input, threshold, value, inplace=True)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:  # noqa: A002
    return _F().hardshrink(input, lambd)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:  # noqa: A002
    return _F().pdist(input, p)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    return _F().cosine_similarity(x1, x2, dim, eps)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:  # fmt: skip
    return _F().pairwise_distance(x1, x2, p, eps, keepdim)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:  # noqa: A002
    return _F().pixel_shuffle(input, upscale_factor)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:  # noqa: A002
    return _F().pixel_unshuffle(input, downscale_factor)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:  # noqa: A002
    return _F().channel_shuffle(input, groups)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None):
    return _F().bilinear(input1, input2, weight, bias)


def conv3d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
           groups: int = 1) -> Tensor:  # fmt: skip
    return _F().conv3d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose3d(input: Tensor, weight: Tensor, bias=None, stride=1, padding=0,  # noqa: A002
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:  # fmt: skip
    return _F().conv_transpose3d(input, weight, bias, stride, padding, output_padding, groups,
                                 dilation)  # fmt: skip


def conv_tbc(input: Tensor, weight: Tensor, bias: Tensor, pad: int = 0) -> Tensor:  # noqa: A002
    return _F().conv_tbc(input, weight, bias, pad)


def instance_norm(input: Tensor, weight=None, bias=None, running_mean=None,  # noqa: A002
                  running_var=None, use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5, cudnn_enabled: bool = False) -> Tensor:  # fmt: skip
    """PyTorch's positional form of ``F.instance_norm`` (``cudnn_enabled`` is ignored)."""
    return _F().instance_norm(input, running_mean, running_var, weight, bias, use_input_stats,
                              momentum, eps)  # fmt: skip


# ---------------------------------------------------------------------------- sampling, modes


def binomial(count: Tensor, prob: Tensor, generator=None) -> Tensor:
    """Draws of Binomial(``count``, ``prob``), elementwise (no gradient), in ``count``'s dtype.
    Its arguments are not validated, as PyTorch's (``torch.binomial(tensor([2.5]), ...)``
    runs), and so cost no host read."""
    from ..distributions import Binomial

    return Binomial(count, probs=prob, validate_args=False).sample().to(count.dtype)


def is_anomaly_enabled() -> bool:
    """Whether anomaly detection (``autograd.set_detect_anomaly``) is on."""
    from .. import autograd

    return bool(autograd._anomaly)


def is_anomaly_check_nan_enabled() -> bool:
    """Whether anomaly detection checks backward results for NaN (on when it is enabled)."""
    return is_anomaly_enabled()


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    """Switch anomaly detection on or off for the rest of the program."""
    from .. import autograd

    autograd.set_detect_anomaly(enabled, check_nan)


def is_signed(input: Tensor) -> bool:  # noqa: A002
    return input.is_signed()


def get_device(input: Tensor) -> int:  # noqa: A002
    """``input``'s GPU index, -1 on the CPU."""
    return input.get_device()


# ---------------------------------------------------------------------------- low-rank SVD


def svd_lowrank(A: Tensor, q: int | None = 6, niter: int = 2, M: Tensor | None = None):  # noqa: N803
    """``(U, S, V)`` of the ``q`` largest singular values of ``A - M`` (exact: computed from
    the full SVD, so ``niter`` changes nothing), batched over leading dims."""
    from .. import linalg

    X = A if M is None else A - M  # noqa: N806
    q = min(6 if q is None else q, X.shape[-2], X.shape[-1])
    U, S, Vh = linalg.svd(X, full_matrices=False)  # noqa: N806
    return U[..., :q], S[..., :q], Vh[..., :q, :].mT


def pca_lowrank(A: Tensor, q: int | None = None, center: bool = True, niter: int = 2):  # noqa: N803
    """``(U, S, V)`` of the principal components of ``A`` (rows are samples), centred on the
    column means unless ``center=False``; ``q`` defaults to min(6, m, n)."""
    M = A.mean(-2, keepdim=True) if center else None  # noqa: N806
    return svd_lowrank(A, q, niter, M)


# ---------------------------------------------------------------------------- *_copy ops


def _copy(name: str, method: str, doc: str):
    def fn(input: Tensor, *args, **kwargs):  # noqa: A002
        out = getattr(input, method)(*args, **kwargs)
        if isinstance(out, (tuple, list)):
            return type(out)(o.clone() for o in out)
        return out.clone()

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``input.{method}(...)`` as a new tensor ({doc})."
    return fn


_COPIES = {
    "view_copy": "view", "permute_copy": "permute", "t_copy": "t",
    "transpose_copy": "transpose", "squeeze_copy": "squeeze", "unsqueeze_copy": "unsqueeze",
    "select_copy": "select", "diagonal_copy": "diagonal", "detach_copy": "detach",
    "expand_copy": "expand", "unbind_copy": "unbind", "split_copy": "split",
    "split_with_sizes_copy": "split", "unfold_copy": "unfold", "as_strided_copy": "as_strided",
    "alias_copy": "view_as",
}  # fmt: skip
globals().update({n: _copy(n, m, "no memory shared") for n, m in _COPIES.items()})


def alias_copy(input: Tensor) -> Tensor:  # noqa: A002
    """A copy of ``input`` (PyTorch's ``alias`` as a new tensor)."""
    return input.clone()


def slice_copy(input: Tensor, dim: int = 0, start=None, end=None, step: int = 1):  # noqa: A002
    """``input`` sliced along ``dim`` (``start:end:step``), as a new tensor."""
    idx = [slice(None)] * input.ndim
    idx[dim] = slice(start, end, step)
    return input[tuple(idx)].clone()


def view_as_real_copy(input: Tensor) -> Tensor:  # noqa: A002
    from ..ops import view_as_real

    return view_as_real(input).clone()


def view_as_complex_copy(input: Tensor) -> Tensor:  # noqa: A002
    from ..ops import view_as_complex

    return view_as_complex(input).clone()


# ---------------------------------------------------------------------------- in-place forms


def resize_as_(input: Tensor, the_template: Tensor, *, memory_format=None) -> Tensor:  # noqa: A002
    return input.resize_as_(the_template)


def i0_(input: Tensor) -> Tensor:  # noqa: A002
    return input.i0_()


def conj_physical_(input: Tensor) -> Tensor:  # noqa: A002
    return input.conj_physical_()


def as_strided_(input: Tensor, size, stride, storage_offset=None) -> Tensor:  # noqa: A002
    return input.as_strided_(size, stride, storage_offset)


def unsafe_split_with_sizes(input: Tensor, split_sizes, dim: int = 0) -> tuple:  # noqa: A002
    """``split_with_sizes`` (manygrad has no unchecked form: its views are always safe)."""
    return tuple(input.split(list(split_sizes), dim))


def fork(func, *args, **kwargs):
    """``torch.jit.fork`` under its older top-level name (the call runs at once)."""
    from .. import jit

    return jit.fork(func, *args, **kwargs)


def wait(future):
    """``torch.jit.wait`` under its older top-level name."""
    from .. import jit

    return jit.wait(future)


__all__ = sorted(
    n for n, v in list(globals().items())
    if callable(v) and not n.startswith("_") and not isinstance(v, type)
    and getattr(v, "__module__", None) == __name__
)  # fmt: skip
