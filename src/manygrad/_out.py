"""PyTorch's ``out=`` keyword: ``mg.add(a, b, out=c)`` writes the result into ``c``.

The functions whose PyTorch counterparts take ``out=`` are wrapped once, at import, where
users reach them (``manygrad``, ``manygrad.linalg``, ``manygrad.special``,
``manygrad.fft``); the ops themselves know nothing of it. Without ``out`` the wrapper
only forwards the call.

As in PyTorch:
- ``out`` is resized to the result's shape (with PyTorch's warning when it had elements);
- ``out`` must be on the result's device;
- its dtype must equal the result's, except for the ops PyTorch casts into ``out``:
  arithmetic, most float functions and reductions (when the result's category, bool <
  integer < floating < complex, is not above ``out``'s) and comparisons (any dtype);
- ops with several results take a tuple of tensors and return them in the op's named
  tuple;
- ``out=`` records no graph: it is refused while gradients are recorded and an input or
  ``out`` requires grad;
- factory functions (``zeros``, ``arange``, ``randn``, ...) take ``out``'s dtype and
  device unless they are given.
"""

from __future__ import annotations

import functools
import inspect
import warnings

from .errors import AutogradError, DeviceError, DTypeError, ShapeError

# dtype rules for the result written into ``out`` (everything else: the same dtype)
_ANY = frozenset(
    "eq ne lt le gt ge greater greater_equal less less_equal not_equal logical_and "
    "logical_or logical_xor logical_not".split()
)
_CAST = frozenset(
    # arithmetic and elementwise float functions
    "add sub subtract mul multiply div divide true_divide floor_divide remainder fmod pow "
    "float_power atan2 arctan2 hypot lerp copysign xlogy logaddexp logaddexp2 ldexp "
    "maximum minimum fmax fmin bitwise_and bitwise_or bitwise_xor bitwise_not "
    "bitwise_left_shift bitwise_right_shift gcd lcm addcmul addcdiv exp exp2 expm1 log "
    "log10 log1p log2 sqrt rsqrt sin cos tan asin acos atan sinh cosh tanh asinh acosh "
    "atanh arcsin arccos arctan arcsinh arccosh arctanh sigmoid erf erfc erfinv lgamma "
    "digamma polygamma mvlgamma i0 sinc logit reciprocal deg2rad rad2deg nan_to_num "
    "bernoulli normal "
    # reductions, scans and joins
    "sum prod mean nansum nanmean std var diff cat concat concatenate stack hstack vstack "
    "dstack column_stack row_stack cumsum cumprod logsumexp logcumsumexp".split()
)
# the ``manygrad.special`` functions cast as the elementwise ops above
_SPECIAL_EXACT = frozenset({"round", "logsumexp"})
_FACTORY = frozenset(
    "arange range empty zeros ones full eye linspace logspace rand randn randint randperm "
    "fftfreq rfftfreq".split()
)

# the functions of each namespace that take ``out=`` in PyTorch 2.13 (from its signatures)
TORCH = frozenset(
    """
abs absolute acos acosh add addbmm addcdiv addcmul addmm addmv addr alias_copy all amax amin
aminmax angle any arange arccos arccosh arcsin arcsinh arctan arctan2 arctanh argmax argmin
argsort as_strided_copy asin asinh atan atan2 atanh baddbmm bernoulli bitwise_and
bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor bmm bucketize cat
ceil chain_matmul cholesky cholesky_inverse cholesky_solve clamp clamp_max clamp_min clip
column_stack complex concat concatenate conj_physical copysign cos cosh cross cummax cummin
cumprod cumsum deg2rad detach_copy diag diagonal_copy diff digamma div divide dot dstack empty
eq erf erfc erfinv exp exp2 expand_copy expm1 eye fix float_power floor floor_divide fmax fmin
fmod frac frexp frobenius_norm full gather gcd ge geqrf ger greater greater_equal gt
hardshrink heaviside histc histogram hstack hypot i0 igamma igammac index_add index_copy
index_reduce index_select inner inverse isin isneginf isposinf kron kthvalue lcm ldexp le lerp
less less_equal lgamma linspace log log10 log1p log2 log_softmax logaddexp logaddexp2
logcumsumexp logical_and logical_not logical_or logical_xor logit logspace logsumexp lt
lu_unpack masked_select matmul matrix_power max maximum mean median min minimum mm mode msort
mul multinomial multiply mv mvlgamma nan_to_num nanmean nanmedian nanquantile nansum
narrow_copy ne neg negative nextafter nonzero norm normal not_equal nuclear_norm ones orgqr
outer permute_copy polar polygamma pow prod qr quantile rad2deg rand randint randn randperm
range reciprocal remainder renorm round row_stack rsqrt scatter scatter_add scatter_reduce
searchsorted select_copy sgn sigmoid sign signbit sin sinc sinh slice_copy slice_scatter
slogdet softmax sort split_copy split_with_sizes_copy sqrt square squeeze_copy stack std sub
subtract sum svd t_copy take take_along_dim tan tanh tensordot threshold topk transpose_copy
tril triu true_divide trunc unbind_copy unfold_copy unsqueeze_copy var vdot
view_as_complex_copy view_as_real_copy view_copy vstack where xlogy zeros
""".split()
)
LINALG = frozenset(
    """
cholesky cholesky_ex cond cross det eig eigh eigvals eigvalsh householder_product inv inv_ex
lu lu_factor lu_factor_ex lu_solve matmul matrix_norm matrix_power matrix_rank multi_dot norm
pinv qr slogdet solve solve_ex solve_triangular svd svdvals tensorinv tensorsolve vecdot
vector_norm ldl_factor ldl_factor_ex ldl_solve
""".split()
)
SPECIAL = frozenset(
    """
airy_ai bessel_j0 bessel_j1 bessel_y0 bessel_y1 chebyshev_polynomial_t chebyshev_polynomial_u
chebyshev_polynomial_v chebyshev_polynomial_w digamma entr erf erfc erfcx erfinv exp2 expit
expm1 gammainc gammaincc gammaln hermite_polynomial_h hermite_polynomial_he i0 i0e i1 i1e
laguerre_polynomial_l legendre_polynomial_p log1p log_ndtr logit logsumexp modified_bessel_i0
modified_bessel_i1 modified_bessel_k0 modified_bessel_k1 multigammaln ndtr ndtri polygamma psi
round scaled_modified_bessel_k0 scaled_modified_bessel_k1 shifted_chebyshev_polynomial_t
shifted_chebyshev_polynomial_u shifted_chebyshev_polynomial_v shifted_chebyshev_polynomial_w
sinc spherical_bessel_j0 xlog1py xlogy zeta
""".split()
)
FFT = frozenset(
    """
fft fft2 fftfreq fftn hfft hfft2 hfftn ifft ifft2 ifftn ihfft ihfft2 ihfftn irfft irfft2 irfftn
rfft rfft2 rfftfreq rfftn
""".split()
)


# functions (and Tensor methods) whose ``dim`` PyTorch also takes as ``axis`` (and
# ``keepdim`` as ``keepdims``), as NumPy names them
AXIS = frozenset(
    """
sum mean max min argmax argmin std var prod cumsum cumprod any all amax amin logsumexp median
nansum nanmean softmax log_softmax squeeze unsqueeze cat stack concat count_nonzero sort
argsort topk var_mean std_mean mode unbind chunk narrow select index_select gather diff
aminmax nanmedian quantile kthvalue cummax logcumsumexp take_along_dim repeat_interleave
tensor_split
""".split()
)


def numpy_dims(name: str, dim, keepdim, axis, keepdims):
    """``axis`` / ``keepdims`` (NumPy's names; None when not given) as ``dim`` /
    ``keepdim``."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{name}() got both dim and its alias axis; pass one of them")
        dim = axis
    return dim, (keepdim if keepdims is None else keepdims)


def _numpy_names(name: str, kwargs: dict) -> None:
    """``axis=`` / ``keepdims=`` in ``kwargs`` as ``dim=`` / ``keepdim=``, in place."""
    if "keepdims" in kwargs and "keepdim" in kwargs:
        raise TypeError(f"{name}() got both keepdim and its alias keepdims; pass one")
    dim, keepdim = numpy_dims(name, kwargs.get("dim"), kwargs.get("keepdim"),
                              kwargs.pop("axis", None), kwargs.pop("keepdims", None))  # fmt: skip
    for key, value in (("dim", dim), ("keepdim", keepdim)):
        if value is not None:
            kwargs[key] = value


def _has_param(fn, param: str) -> bool:
    try:
        return param in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def with_dim_aliases(fn, name: str):
    """``fn`` that also takes ``axis=`` / ``keepdims=`` (see ``AXIS``)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if kwargs and ("axis" in kwargs or "keepdims" in kwargs):
            _numpy_names(name, kwargs)
        return fn(*args, **kwargs)

    wrapper._dim_aliases = True
    return wrapper


def _rewrap(owner, names, skip, make) -> None:
    """Replace ``owner``'s callables ``names`` by ``make(fn, name)``, except where ``skip(fn)``;
    aliases (``arccos`` and ``acos``) stay one object. Module functions take the module and
    the name to be pickled by reference."""
    is_class = isinstance(owner, type)
    done = {}
    for name in sorted(names):
        fn = getattr(owner, name, None)
        if fn is None or not callable(fn) or isinstance(fn, type):
            continue
        if id(fn) in done:
            setattr(owner, name, done[id(fn)])
            continue
        if skip(fn):
            continue
        wrapped = done[id(fn)] = make(fn, name)
        if not is_class:
            wrapped.__module__, wrapped.__qualname__ = owner.__name__, name
        setattr(owner, name, wrapped)


def add_dim_aliases(owner, names=AXIS) -> None:
    """Give the functions (or, for a class, methods) ``names`` of ``owner`` the ``axis=`` /
    ``keepdims=`` aliases, unless they have them already (an ``out=`` wrapper, or the
    hot Tensor reductions, whose signatures take them)."""
    _rewrap(owner, names,
            lambda fn: getattr(fn, "_dim_aliases", False) or _has_param(fn, "axis"),
            with_dim_aliases)  # fmt: skip


def _tensor():
    from .tensor import Tensor

    return Tensor


def _requires_grad(args, kwargs) -> bool:
    tensor = _tensor()
    for v in (*args, *kwargs.values()):
        if isinstance(v, tensor):
            if v.requires_grad:
                return True
        elif isinstance(v, (list, tuple)):
            if any(isinstance(t, tensor) and t.requires_grad for t in v):
                return True
    return False


def _check_dtype(name: str, res, out, policy: str) -> None:
    rd, od = res.dtype, out.dtype
    if rd is od or policy == "any":
        return
    if policy == "cast":
        if rd._cat <= od._cat:
            return
        raise DTypeError(
            f"{name}(): result type {rd.name} can't be cast to the desired output type "
            f"{od.name}; pass an out of dtype {rd.name}"
        )
    raise DTypeError(
        f"{name}(): expected out tensor to have dtype {rd.name}, but got {od.name}; pass "
        f"an out of dtype {rd.name}, e.g. mg.empty(0, dtype=mg.{rd.name})"
    )


def write(name: str, res, out, policy: str = "exact"):
    """Write ``res`` into the tensor ``out`` (resized, dtype checked), returning ``out``."""
    from . import autograd, backend

    tensor = _tensor()
    if not isinstance(out, tensor):
        raise TypeError(f"{name}(): argument 'out' must be a Tensor, not {type(out).__name__}")
    if not isinstance(res, tensor):  # NOTE: a Python number or bool from a query-like op
        from .creation import tensor as make

        res = make(res, device=out._device)
    if res._device != out._device:
        raise DeviceError(
            f"{name}(): expected out tensor to be on {res._device}, but it is on "
            f"{out._device}; create out on {res._device}"
        )
    _check_dtype(name, res, out, policy)
    if tuple(out.shape) != tuple(res.shape):
        if out._base is not None:
            raise ShapeError(
                f"{name}(): out is a view of another tensor with shape {list(out.shape)}, but "
                f"the result has shape {list(res.shape)}; pass an out of that shape, or a "
                "tensor that is not a view"
            )
        if out.numel():
            warnings.warn(
                f"An output with one or more elements was resized since it had shape "
                f"{list(out.shape)}, which does not match the required output shape "
                f"{list(res.shape)}. This behavior is deprecated, and in a future PyTorch "
                "release outputs will not be resized unless they have zero elements. You "
                "can explicitly reuse an out tensor t by resizing it, inplace, to zero "
                "elements with t.resize_(0).",
                UserWarning,
                stacklevel=3,
            )
        with backend.device_scope(out._device):
            out._data = backend.xp_of(out._device).empty(tuple(res.shape), out._data.dtype)
    with autograd.no_grad():
        out.copy_(res)
    return out


def _write_all(name: str, res, out):
    """Several results (a named tuple or a list) into the tensors of ``out``."""
    if not isinstance(out, (tuple, list)):
        raise TypeError(
            f"{name}(): argument 'out' must be a tuple of {len(res)} Tensors, not "
            f"{type(out).__name__}"
        )
    if len(out) != len(res):
        raise ValueError(f"{name}(): expected {len(res)} out tensors, got {len(out)}")
    outs = [write(name, r, o) for r, o in zip(res, out)]
    if isinstance(res, list):
        return outs
    if hasattr(res, "_fields"):
        return type(res)(*outs)
    if hasattr(res, "n_fields"):  # NOTE: a return_types tuple gives its ``<name>_out`` type
        from .return_types import out_variant

        return out_variant(res)(outs)
    return tuple(outs)


def _sparse_call(name: str, args: tuple, kwargs: dict):
    from ._sparse_ops import call

    return call(name, args, kwargs)


def with_out(fn, name: str, policy: str = "exact", factory: bool = False, dims: bool = False):
    """``fn`` taking PyTorch's ``out=`` keyword (see the module docstring); ``dims``: also
    ``axis=`` / ``keepdims=`` for ``dim=`` / ``keepdim=``."""
    from . import autograd

    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if dims and kwargs and ("axis" in kwargs or "keepdims" in kwargs):
            _numpy_names(name, kwargs)
        if out is None:
            try:
                return fn(*args, **kwargs)
            except (TypeError, AttributeError, NotImplementedError):
                # NOTE: a sparse COO operand, refused by the dense op: its sparse form (this
                # costs nothing until the dense op raises)
                res = _sparse_call(name, args, kwargs) if args else NotImplemented
                if res is NotImplemented:
                    raise
                return res
        if autograd._grad_enabled and (_requires_grad((*args, out), kwargs)):
            raise AutogradError(
                f"{name}(): functions with out=... arguments don't support automatic "
                "differentiation, but one of the arguments requires grad; call it without "
                "out= (or inside mg.no_grad())"
            )
        if factory and isinstance(out, _tensor()):
            kwargs.setdefault("dtype", out.dtype)
            kwargs.setdefault("device", out.device)
        res = fn(*args, **kwargs)
        if isinstance(res, (tuple, list)):
            return _write_all(name, res, out)
        return write(name, res, out, policy)

    wrapper._takes_out = True
    wrapper._dim_aliases = dims
    return wrapper


def _policy(name: str, namespace: str) -> str:
    if name in _ANY:
        return "any"
    if name in _CAST or (namespace == "special" and name not in _SPECIAL_EXACT):
        return "cast"
    return "exact"


def add_out(module, names, namespace: str = "torch") -> None:
    """Give the functions ``names`` of ``module`` PyTorch's ``out=`` keyword."""

    def make(fn, name):
        wrapped = with_out(fn, name, _policy(name, namespace), name in _FACTORY,
                           namespace == "torch" and name in AXIS)  # fmt: skip
        if hasattr(fn, "_autocast_policy"):
            wrapped._autocast_policy = fn._autocast_policy
        return wrapped

    _rewrap(module, names,
            lambda fn: getattr(fn, "_takes_out", False) or _has_param(fn, "out"), make)  # fmt: skip
