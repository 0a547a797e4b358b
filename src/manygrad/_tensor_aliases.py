"""More of ``Tensor``'s methods, as PyTorch has them: the in-place forms of ops that have an
out-of-place method (``cumsum_``, ``tril_``, ``eq_``, ``addmm_``, ...), PyTorch's aliases
(``greater``, ``arccos_``, ...), random fills, and the real-number answers of the
complex-number API (``conj``, ``real``, ``angle``) for code that calls them on real tensors.

``Tensor`` derives from ``AliasMethods`` (through ``TensorMethods``).
"""

from __future__ import annotations

import sys

from ._size_args import one_form


def _ops():
    return sys.modules["manygrad.ops"]


class AliasMethods:
    """In-place forms, aliases and small queries of ``Tensor`` (a base of it)."""

    __slots__ = ()

    # ------------------------------------------------------------ in-place aliases
    def absolute_(self):
        return self.abs_()

    def negative_(self):
        return self.neg_()

    def arccos_(self):
        return self.acos_()

    def arcsin_(self):
        return self.asin_()

    def arctan_(self):
        return self.atan_()

    def arcsinh_(self):
        return self.asinh_()

    def arctanh_(self):
        return self.atanh_()

    def acosh_(self):
        return self._inplace("acosh_", _ops().acosh)

    def arccosh_(self):
        return self.acosh_()

    def arctan2_(self, other):
        return self.atan2_(other)

    def multiply_(self, other):
        return self.mul_(other)

    def divide_(self, other, *, rounding_mode=None):
        if rounding_mode is None:
            return self.div_(other)
        return self._inplace("divide_", _ops().div, other, rounding_mode=rounding_mode)

    def true_divide_(self, other):
        return self.div_(other)

    def subtract_(self, other, *, alpha=1):
        return self.sub_(other, alpha=alpha)

    def swapaxes_(self, axis0: int, axis1: int):
        return self.transpose_(axis0, axis1)

    def swapdims_(self, dim0: int, dim1: int):
        return self.transpose_(dim0, dim1)

    # ------------------------------------------------------------ in-place forms of ops
    def erfc_(self):
        return self._inplace("erfc_", _ops().erfc)

    def fix_(self):
        return self.trunc_()

    def sinc_(self):
        return self._inplace("sinc_", _ops().sinc)

    def deg2rad_(self):
        return self._inplace("deg2rad_", _ops().deg2rad)

    def rad2deg_(self):
        return self._inplace("rad2deg_", _ops().rad2deg)

    def float_power_(self, exponent):
        if self.dtype.name != "float64":
            raise RuntimeError(
                f"float_power_: the result is float64 but the tensor is {self.dtype.name}; "
                "use x = x.float_power(...) or a float64 tensor"
            )
        return self._inplace("float_power_", _ops().float_power, exponent)

    def gcd_(self, other):
        return self._inplace("gcd_", _ops().gcd, other)

    def lcm_(self, other):
        return self._inplace("lcm_", _ops().lcm, other)

    def ldexp_(self, other):
        return self._inplace("ldexp_", _ops().ldexp, other)

    def mvlgamma_(self, p: int):
        return self._inplace("mvlgamma_", _ops().mvlgamma, p)

    def polygamma_(self, n: int):
        return self._inplace("polygamma_", lambda s: _ops().polygamma(n, s))

    def cumsum_(self, dim: int, *, dtype=None):
        return self._inplace("cumsum_", _ops().cumsum, dim)

    def cumprod_(self, dim: int, *, dtype=None):
        return self._inplace("cumprod_", _ops().cumprod, dim)

    def tril_(self, diagonal: int = 0):
        return self._inplace("tril_", _ops().tril, diagonal)

    def triu_(self, diagonal: int = 0):
        return self._inplace("triu_", _ops().triu, diagonal)

    def renorm_(self, p, dim: int, maxnorm):
        return self._inplace("renorm_", _ops().renorm, p, dim, maxnorm)

    def addmm_(self, mat1, mat2, *, beta=1, alpha=1):
        return self._inplace("addmm_", _ops().addmm, mat1, mat2, beta=beta, alpha=alpha)

    def addbmm_(self, batch1, batch2, *, beta=1, alpha=1):
        return self._inplace("addbmm_", _ops().addbmm, batch1, batch2, beta=beta, alpha=alpha)

    def baddbmm_(self, batch1, batch2, *, beta=1, alpha=1):
        return self._inplace("baddbmm_", _ops().baddbmm, batch1, batch2, beta=beta,
                             alpha=alpha)  # fmt: skip

    def addmv_(self, mat, vec, *, beta=1, alpha=1):
        return self._inplace("addmv_", _ops().addmv, mat, vec, beta=beta, alpha=alpha)

    def addr_(self, vec1, vec2, *, beta=1, alpha=1):
        return self._inplace("addr_", _ops().addr, vec1, vec2, beta=beta, alpha=alpha)

    def index_reduce_(self, dim: int, index, source, reduce: str, *, include_self=True):
        return self._inplace("index_reduce_", _ops().index_reduce, dim, index, source, reduce,
                             include_self=include_self)  # fmt: skip

    def fill_diagonal_(self, fill_value, wrap: bool = False):
        return self._inplace("fill_diagonal_", _fill_diagonal, fill_value, wrap)

    # ------------------------------------------------------------ comparisons and logic
    def eq_(self, other):
        return self._inplace("eq_", _ops().eq, other)

    def ne_(self, other):
        return self._inplace("ne_", _ops().ne, other)

    def lt_(self, other):
        return self._inplace("lt_", _ops().lt, other)

    def le_(self, other):
        return self._inplace("le_", _ops().le, other)

    def gt_(self, other):
        return self._inplace("gt_", _ops().gt, other)

    def ge_(self, other):
        return self._inplace("ge_", _ops().ge, other)

    not_equal_, less_, less_equal_, greater_, greater_equal_ = ne_, lt_, le_, gt_, ge_

    def greater(self, other):
        return _ops().gt(self, other)

    def greater_equal(self, other):
        return _ops().ge(self, other)

    def less(self, other):
        return _ops().lt(self, other)

    def less_equal(self, other):
        return _ops().le(self, other)

    def not_equal(self, other):
        return _ops().ne(self, other)

    def logical_and_(self, other):
        return self._inplace("logical_and_", _ops().logical_and, other)

    def logical_or_(self, other):
        return self._inplace("logical_or_", _ops().logical_or, other)

    def logical_xor_(self, other):
        return self._inplace("logical_xor_", _ops().logical_xor, other)

    def logical_not_(self):
        return self._inplace("logical_not_", _ops().logical_not)

    def bitwise_and_(self, other):
        return self._inplace("bitwise_and_", _ops().bitwise_and, other)

    def bitwise_or_(self, other):
        return self._inplace("bitwise_or_", _ops().bitwise_or, other)

    def bitwise_xor_(self, other):
        return self._inplace("bitwise_xor_", _ops().bitwise_xor, other)

    def bitwise_not_(self):
        return self._inplace("bitwise_not_", _ops().bitwise_not)

    def bitwise_left_shift_(self, other):
        return self._inplace("bitwise_left_shift_", _ops().bitwise_left_shift, other)

    def bitwise_right_shift_(self, other):
        return self._inplace("bitwise_right_shift_", _ops().bitwise_right_shift, other)

    # ------------------------------------------------------------ out-of-place
    def true_divide(self, other):
        return _ops().div(self, other)

    def diagflat(self, offset: int = 0):
        return _ops().diagflat(self, offset)

    def hardshrink(self, lambd: float = 0.5):
        from .ops.activation import hardshrink

        return hardshrink(self, lambd)

    def prelu(self, weight):
        from .ops.activation import prelu

        return prelu(self, weight)

    def nextafter(self, other):
        return _ops().nextafter(self, other)

    def nextafter_(self, other):
        return self._inplace("nextafter_", _ops().nextafter, other)

    def index_reduce(self, dim: int, index, source, reduce: str, *, include_self=True):
        return _ops().index_reduce(self, dim, index, source, reduce, include_self=include_self)

    def put(self, index, source, accumulate: bool = False):
        return self.clone().put_(index, source, accumulate)

    def as_strided(self, size, stride, storage_offset=None):
        return _ops().as_strided(self, size, stride, storage_offset)

    def as_strided_scatter(self, src, size, stride, storage_offset=None):
        return _ops().as_strided_scatter(self, src, size, stride, storage_offset)

    def sum_to_size(self, *sizes, size=None):
        """The sum of this tensor down to ``size``, a shape it broadcasts from."""
        return _ops().sum_to_size(self, *one_form("sum_to_size", sizes, size=size))

    def split_with_sizes(self, split_sizes, dim: int = 0):
        return _ops().split(self, list(split_sizes), dim)

    def unsafe_split(self, split_size, dim: int = 0):
        return _ops().split(self, split_size, dim)

    def unsafe_chunk(self, chunks: int, dim: int = 0):
        return _ops().chunk(self, chunks, dim)

    def stft(self, n_fft: int, *args, **kwargs):
        from .spectral import stft

        return stft(self, n_fft, *args, **kwargs)

    def istft(self, n_fft: int, *args, **kwargs):
        from .spectral import istft

        return istft(self, n_fft, *args, **kwargs)

    # ------------------------------------------------------------ random fills
    def cauchy_(self, median: float = 0.0, sigma: float = 1.0, *, generator=None):
        """Samples of the Cauchy distribution, in place."""
        u = self._uniform(generator)
        return self._fill_with("cauchy_", median + sigma * ((u - 0.5) * 3.141592653589793).tan())

    def log_normal_(self, mean: float = 1.0, std: float = 2.0, *, generator=None):
        """Samples of ``exp(N(mean, std**2))``, in place."""
        from .creation import randn

        z = randn(*self.shape, dtype=self.dtype, device=self.device, generator=generator)
        return self._fill_with("log_normal_", (z * std + mean).exp())

    def geometric_(self, p: float, *, generator=None):
        """Samples of the number of Bernoulli(``p``) trials up to the first success."""
        u = self._uniform(generator).double()
        k = ((1 - u).log() / _log1m(p)).ceil().clamp(min=1)
        return self._fill_with("geometric_", k)

    def _uniform(self, generator):
        from .creation import rand

        return rand(*self.shape, dtype=self.dtype if self.is_floating_point() else None,
                    device=self.device, generator=generator)  # fmt: skip

    def _fill_with(self, name: str, v):
        from .autograd._inplace import overwrite

        return self._inplace(name, overwrite, v.detach())

    # ------------------------------------------------------------ real numbers
    def conj(self):
        """The complex conjugate (this tensor itself for real dtypes)."""
        return _ops().conj(self)

    def conj_physical(self):
        return _ops().conj_physical(self)

    def conj_physical_(self):
        if self.is_complex():
            return self._inplace("conj_physical_", _ops().conj)
        from .autograd._inference import check_inplace

        check_inplace(self, "conj_physical_")  # NOTE: a no-op on real tensors, refused as one
        return self

    def resolve_conj(self):
        return self

    def resolve_neg(self):
        return self

    def is_conj(self) -> bool:
        return False

    def is_neg(self) -> bool:
        return False

    def angle(self):
        """The argument: 0 or pi for reals (NaN stays NaN), in (-pi, pi] for complex values."""
        return _ops().angle(self)

    @property
    def real(self):
        return _ops().real(self)

    @property
    def imag(self):
        return _ops().imag(self)

    # ------------------------------------------------------------ devices and layout
    @property
    def is_cpu(self) -> bool:
        return self.device.type == "cpu"

    is_mps = is_xpu = is_ipu = is_xla = is_mtia = is_maia = is_vulkan = False
    is_mkldnn = is_nested = is_sparse_csr = False

    def is_inference(self) -> bool:
        """True for a tensor made inside ``inference_mode`` (a view of a normal tensor
        excepted)."""
        m = self._meta
        return m is not None and m.get("inference", False)

    def record_stream(self, s) -> None:
        """Mark the memory as used by the stream ``s``: manygrad frees a tensor's memory only once
        no reference to it is left, so this records nothing."""

    def dim_order(self, *, ambiguity_check=False) -> tuple:
        """The dims from the outermost in memory to the innermost (by stride)."""
        st = self.stride()
        return tuple(sorted(range(self.ndim), key=lambda d: -st[d]))

    def const_data_ptr(self) -> int:
        return self.data_ptr()

    def new_empty_strided(self, size, stride, *, dtype=None, device=None, requires_grad=False):
        from .compat.torch_functions import empty_strided

        return empty_strided(size, stride, dtype=dtype or self.dtype,
                             device=device or self.device, requires_grad=requires_grad)  # fmt: skip


def _log1m(p: float) -> float:
    import math

    return -math.inf if p >= 1 else math.log1p(-p)


def _fill_diagonal(s, value, wrap: bool):
    """A copy of ``s`` with ``value`` on the main diagonal (all dims equal, or 2-d tall with
    ``wrap``: the diagonal restarts every ``columns + 1`` rows)."""
    from .creation import arange

    shape = s.shape
    if s.ndim < 2 or (s.ndim > 2 and len(set(shape)) != 1):
        raise ValueError(
            f"fill_diagonal_: needs a 2-d tensor or one whose dims are all equal, got "
            f"shape {tuple(shape)}"
        )
    if s.ndim == 2:
        rows, cols = shape
        n, step = min(rows, cols), cols + 1
        if wrap:  # NOTE: the flat positions keep their step past each square block
            n = -(-rows * cols // step)
        pos = arange(0, n * step, step, device=s.device)
    else:
        n = shape[0]
        step = sum(n**k for k in range(s.ndim))
        pos = arange(0, n * step, step, device=s.device)
    from .creation import full

    vals = full((pos.shape[0],), value, dtype=s.dtype, device=s.device)
    flat = _ops().index_put(s.reshape(-1), (pos,), vals)
    return flat.reshape(*shape)
