"""Resampling: interpolate (nearest, nearest-exact, linear, bilinear, bicubic, trilinear,
area), grid_sample and affine_grid, as in ``torch.nn.functional``.

interpolate is separable: each spatial dim is resampled in turn. On CPUs the linear and
cubic modes are one node of matrix products (``_resample_blocks``); elsewhere (GPUs, ONNX
traces) each dim selects source rows (``index_select``) and mixes them with fixed weights,
so its gradient (a scatter-add of the weighted rows) and the gradient of that come from
differentiable ops. Source positions and weights follow PyTorch's kernels (same formulas,
in the input's float precision, float32 for 16-bit floats; nearest in float32 as PyTorch
computes it). grid_sample gathers the four neighbours of each sampling point; its weights
are differentiable functions of the grid.
"""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

import itertools
import math

from .. import autograd, backend
from .. import dtypes as D
from ..errors import ShapeError
from ..tensor import Tensor
from . import _resample_blocks as _rb
from ._common import warn_caller
from .elementwise import _float_input, abs, fmod, where
from .indexing import gather, index_select
from .linalg import matmul
from .movement import expand
from .pool import adaptive_avg_pool1d, adaptive_avg_pool2d

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}


def _const(x: Tensor, arr) -> Tensor:
    return Tensor._wrap(arr, x._device)


def _out_sizes(x, size, scale_factor, recompute, nd):
    spatial = tuple(x.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        size = (size,) * nd if isinstance(size, int) else tuple(size)
        if len(size) != nd:
            raise ValueError(f"interpolate: size must have {nd} values for an input of shape "
                             f"{tuple(x.shape)}, got {size}")  # fmt: skip
        return size, (None,) * nd
    sf = (float(scale_factor),) * nd if isinstance(scale_factor, (int, float)) else tuple(
        float(s) for s in scale_factor)  # fmt: skip
    if len(sf) != nd:
        raise ValueError(f"interpolate: scale_factor must have {nd} values for an input of "
                         f"shape {tuple(x.shape)}, got {scale_factor}")  # fmt: skip
    size = tuple(math.floor(float(n) * s) for n, s in zip(spatial, sf))
    return size, ((None,) * nd if recompute else sf)


def _nearest(x, d, n_out, sf, exact):
    xp = backend.array_module(x._data)
    n_in = x.shape[d]
    f32 = D.float32.np.type
    scale = f32(1.0 / sf) if sf is not None and sf > 0 else f32(n_in) / f32(n_out)
    with backend.device_scope(x._device):
        dst = xp.arange(n_out, dtype=f32)
        src = xp.floor((dst + f32(0.5)) * scale if exact else dst * scale).astype(xp.int64)
        src = xp.minimum(src, n_in - 1)
    return index_select(x, d, _const(x, src))


def _taps(x, d, n_out, sf, align_corners, cubic):
    """Source rows and their weights along dim ``d``: lists of (index array, weight array),
    computed in float32 for 16-bit floats (PyTorch's opmath)."""
    xp = backend.array_module(x._data)
    n_in = x.shape[d]
    dt = xp.dtype(x._data.dtype)
    ct = xp.dtype(xp.float32) if dt.itemsize == 2 else dt
    with backend.device_scope(x._device):
        scale = _rb._scale(n_in, n_out, align_corners, sf, ct)
        dst = xp.arange(n_out, dtype=ct)
        src = scale * dst if align_corners else scale * (dst + ct.type(0.5)) - ct.type(0.5)
        if not cubic:
            src = xp.maximum(src, ct.type(0))
            i0 = xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)
            i1 = xp.minimum(i0 + 1, n_in - 1)
            w1 = (src - i0.astype(ct)).astype(ct)
            return [(i0, (ct.type(1) - w1).astype(dt)), (i1, w1.astype(dt))]
        i = xp.floor(src)
        ws = _rb._cubic((src - i).astype(ct), ct.type(1))
        i = i.astype(xp.int64)
        return [(xp.clip(i + k - 1, 0, n_in - 1), w.astype(dt)) for k, w in enumerate(ws)]


def _resample(x, d, n_out, sf, align_corners, cubic):
    shape = [1] * x.ndim
    shape[d] = n_out
    out = None
    for idx, w in _taps(x, d, n_out, sf, align_corners, cubic):
        term = index_select(x, d, _const(x, idx)) * _const(x, w.reshape(shape))
        out = term if out is None else out + term
    return out


def _aa_filter(x, cubic: bool):
    """The antialiasing kernels: a triangle (bilinear) or Keys' cubic with a = -0.5."""
    import numpy as np  # host-ok: the small weight matrices are built on the host

    ax = np.abs(x)
    if not cubic:
        return np.where(ax < 1, 1 - ax, 0.0)
    a = -0.5
    near = ((a + 2) * ax - (a + 3)) * ax * ax + 1
    far = (((ax - 5) * ax + 8) * ax - 4) * a
    return np.where(ax < 1, near, np.where(ax < 2, far, 0.0))


def _aa_weights(n_in: int, n_out: int, sf, align_corners: bool, cubic: bool):
    """``(n_out, n_in)`` resampling weights that average over the footprint of each output
    pixel when shrinking (PyTorch's antialias=True; PIL's resampling)."""
    import numpy as np  # host-ok: the small weight matrices are built on the host

    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    elif sf is not None and sf > 0:
        scale = 1.0 / sf
    else:
        scale = n_in / n_out
    half = 2.0 if cubic else 1.0  # NOTE: half the kernel's width
    support = half * scale if scale >= 1.0 else half
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    w = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        j = np.arange(lo, hi)
        k = _aa_filter((j - center + 0.5) * invscale, cubic)
        total = k.sum()
        w[i, lo:hi] = k / total if total != 0 else k
    return w


def _antialias(x, sizes, sfs, align_corners, cubic):
    from .linalg import matmul

    for k in range(2):
        d = 2 + k
        w = _aa_weights(x.shape[d], sizes[k], sfs[k], align_corners, cubic)
        wt = _const(x, backend.to_device(w.astype(x._data.dtype), x._device))
        x = matmul(wt, x) if d == 2 else matmul(x, wt.mT)
    return x


def _blocks_path(x: Tensor) -> bool:
    """Whether the linear and cubic modes take ``_resample_blocks``: real float CPU
    tensors, outside an ONNX trace (whose export rules know the gathers)."""
    dt = x._data.dtype
    return (
        autograd._trace is None
        and x._device.type == "cpu"
        and dt.itemsize in (2, 4, 8)
        and (dt.kind == "f" or dt.name == "bfloat16")
    )


@backend.on_tensor_device
def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:  # fmt: skip
    """Resize the spatial dims of (N, C, L), (N, C, H, W) or (N, C, D, H, W) inputs.

    Args:
        size: the output's spatial size (int or tuple), or
        scale_factor: a multiplier per spatial dim (float or tuple).
        mode: "nearest" (default), "nearest-exact", "linear", "bilinear", "bicubic",
            "trilinear" or "area".
        align_corners: for the linear and cubic modes, map corner pixels onto each other
            (default False).
        recompute_scale_factor: compute the coordinate scale from the sizes (default False).
        antialias: average over each output pixel's footprint when shrinking (bilinear
            and bicubic; PyTorch's and PIL's resampling).

    Example: ``F.interpolate(images, scale_factor=2, mode="bilinear")``
    """
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode must be one of {_MODES}, got {mode!r}")
    if antialias and mode not in ("bilinear", "bicubic"):
        raise NotImplementedError(
            f"interpolate: anti-alias option is restricted to bilinear and bicubic modes and "
            f"requires a 4-D tensor as input, got mode {mode!r}"
        )
    nd = input.ndim - 2
    if nd not in (1, 2, 3):
        raise ShapeError(f"interpolate: expected an input of 3, 4 or 5 dims (N, C, ...), got "
                         f"shape {tuple(input.shape)}")  # fmt: skip
    if mode in _LINEAR and mode != "bicubic" and _LINEAR[mode] != nd:
        raise ShapeError(f"interpolate: mode {mode!r} needs an input of {_LINEAR[mode] + 2} "
                         f"dims, got shape {tuple(input.shape)}")  # fmt: skip
    if mode == "bicubic" and nd != 2:
        raise ShapeError(f"interpolate: mode 'bicubic' needs a 4-d input, got shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    if align_corners is not None and mode not in _LINEAR:
        raise ValueError("interpolate: align_corners is only for the linear and bicubic modes")
    sizes, sfs = _out_sizes(input, size, scale_factor, recompute_scale_factor, nd)
    if min(sizes) < 1:
        raise ShapeError(f"interpolate: output size {sizes} must be positive")
    if min(input.shape[2:]) < 1:
        raise ShapeError(f"interpolate: the input's spatial size {tuple(input.shape[2:])} must "
                         "be positive")  # fmt: skip
    if mode == "bilinear" and getattr(input, "is_quantized", False) and not antialias:
        from ..ao import _qops  # NOTE: PyTorch's quantized kernel weighs the codes

        return _qops.upsample_bilinear2d(input, sizes, bool(align_corners), tuple(sfs))
    x = _float_input(input)
    if antialias:
        return _antialias(x, sizes, sfs, bool(align_corners), mode == "bicubic")
    if mode == "area":
        if nd == 1:
            return adaptive_avg_pool1d(x, sizes)
        if nd == 2:
            return adaptive_avg_pool2d(x, sizes)
        from .pool3d import adaptive_avg_pool3d

        return adaptive_avg_pool3d(x, sizes)
    if mode in _rb.NODES and _blocks_path(x):
        dt = x._data.dtype
        axes = tuple(
            _rb.axis(x.shape[2 + k], sizes[k], sfs[k], bool(align_corners), mode == "bicubic", dt)
            for k in range(nd)
        )
        return _rb.NODES[mode].apply(x, axes)
    for k in range(nd):
        d = 2 + k
        if mode.startswith("nearest"):
            x = _nearest(x, d, sizes[k], sfs[k], mode == "nearest-exact")
        else:
            x = _resample(x, d, sizes[k], sfs[k], bool(align_corners), mode == "bicubic")
    return x


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated PyTorch name of ``interpolate``."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------------------- grid_sample

_AC_DEFAULT = ("Default grid_sample and affine_grid behavior has changed to align_corners=False "
               "since 1.3.0. Please specify align_corners=True if the old behavior is desired. "
               "See the documentation of grid_sample for details.")  # fmt: skip


def _unnormalize(c, n: int, align_corners: bool):
    return (c + 1) / 2 * (n - 1) if align_corners else ((c + 1) * n - 1) / 2


def _reflect(c, lo2: int, hi2: int):
    """PyTorch's reflect_coordinates over [lo2 / 2, hi2 / 2], as differentiable ops."""
    if lo2 == hi2:
        return c * 0
    lo, span = lo2 / 2, (hi2 - lo2) / 2
    c = abs(c - lo)
    extra = fmod(c, span)
    xp = backend.array_module(c._data)
    flips = _const(c, xp.floor(c._data / span))
    return where(fmod(flips, 2) == 0, extra + lo, span - extra + lo)


def _clip(c, n: int):
    """c limited to [0, n - 1]; its gradient is zero on the bounds too, as in PyTorch's
    clip_coordinates_set_grad (borders count as outside), where clamp's would be one."""
    xp = backend.array_module(c._data)
    with backend.device_scope(c._device):
        inside = (c._data > 0) & (c._data < n - 1)
        # NOTE: NaN goes to 0, as in PyTorch's CPU kernel (clamp_min with swapped operands)
        edge = xp.where(c._data > 0, xp.minimum(c._data, n - 1), 0).astype(c._data.dtype)
    return where(_const(c, inside), c, _const(c, edge))


def _source(c, n: int, padding_mode: str, align_corners: bool):
    c = _unnormalize(c, n, align_corners)
    if padding_mode == "border":
        c = _clip(c, n)
    elif padding_mode == "reflection":
        c = _reflect(c, 0, 2 * (n - 1)) if align_corners else _reflect(c, -1, 2 * n - 1)
        c = _clip(c, n)
    return c


def _pad_taps(xp, p, n: int, padding_mode: str, align_corners: bool):
    """Integer tap positions of bicubic sampling moved inside by the padding mode."""
    if padding_mode == "border":
        return xp.clip(p, 0, n - 1)
    if padding_mode == "reflection":
        lo2, hi2 = (0, 2 * (n - 1)) if align_corners else (-1, 2 * n - 1)
        if lo2 == hi2:
            return xp.zeros_like(p)
        lo, span = lo2 / 2, (hi2 - lo2) / 2
        c = xp.abs(p - lo)
        extra, flips = xp.fmod(c, span), xp.floor(c / span)
        p = xp.where(xp.fmod(flips, 2) == 0, extra + lo, span - extra + lo)
        return xp.clip(p, 0, n - 1)
    return p


def _cubic_weights(t):
    """Keys' cubic convolution weights (a = -0.75) of the 4 taps around offset t."""
    return _rb._cubic(t, 1)


@backend.on_tensor_device
def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear",
                padding_mode: str = "zeros", align_corners: bool | None = None) -> Tensor:  # fmt: skip
    """Sample (N, C, H, W) ``input`` at the (x, y) points of ``grid`` (N, Ho, Wo, 2), or
    (N, C, D, H, W) at the (x, y, z) points of (N, Do, Ho, Wo, 3), with coordinates in
    [-1, 1] (Jaderberg et al., 2015).

    Args:
        mode: "bilinear" (default; trilinear for volumes), "nearest" or "bicubic" (images).
        padding_mode: "zeros" (default), "border" or "reflection".
        align_corners: -1 and 1 are the centres (True) or the outer edges (False, default)
            of the corner pixels.

    Example: ``F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False),
    align_corners=False)`` (without align_corners both warn, as PyTorch's do)
    """
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"grid_sample: mode must be 'bilinear', 'nearest' or 'bicubic', got "
                         f"{mode!r}")  # fmt: skip
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError("grid_sample: padding_mode must be 'zeros', 'border' or 'reflection', "
                         f"got {padding_mode!r}")  # fmt: skip
    nd = input.ndim - 2
    if nd not in (2, 3) or grid.ndim != input.ndim or grid.shape[-1] != nd or (
            grid.shape[0] != input.shape[0]):  # fmt: skip
        raise ShapeError(
            f"grid_sample: expected input (N, C, H, W) with grid (N, Ho, Wo, 2), or input "
            f"(N, C, D, H, W) with grid (N, Do, Ho, Wo, 3), got {tuple(input.shape)} and "
            f"{tuple(grid.shape)}"
        )
    if align_corners is None:  # NOTE: PyTorch's warning, word for word
        warn_caller(_AC_DEFAULT)
    n, c = input.shape[:2]
    sizes = tuple(input.shape[2:])  # (H, W) or (D, H, W)
    out_shape = tuple(grid.shape[1:-1])
    m = 1
    for v in out_shape:
        m *= v
    ac = bool(align_corners)
    if mode == "bicubic" and nd != 2:
        raise ShapeError("grid_sample: mode 'bicubic' supports 4-d inputs (images) only")
    # grid's last dim lists x (width) first: spatial dim k reads component nd - 1 - k
    if mode == "bicubic":  # NOTE: PyTorch pads each tap, not the sampling point
        pos = [_unnormalize(grid[..., nd - 1 - k].reshape(n, 1, m), sizes[k], ac)
               for k in range(nd)]  # fmt: skip
    else:
        pos = [_source(grid[..., nd - 1 - k].reshape(n, 1, m), sizes[k], padding_mode, ac)
               for k in range(nd)]  # fmt: skip
    total = 1
    for v in sizes:
        total *= v
    flat = input.reshape(n, c, total)
    xp = backend.array_module(pos[0]._data)
    strides = [1] * nd
    for k in range(nd - 2, -1, -1):
        strides[k] = strides[k + 1] * sizes[k + 1]

    def corner(points):
        """Values at integer points (one array per spatial dim); zero outside the input."""
        valid, idx = True, 0
        for p, size, st in zip(points, sizes, strides):
            inside = (p >= 0) & (p <= size - 1)  # NOTE: False for NaN, read as index 0
            valid = valid & inside
            idx = idx + xp.where(inside, p, 0) * st
        v = gather(flat, 2, expand(_const(flat, idx.astype(xp.int64)), n, c, m))
        return v * _const(flat, valid.astype(flat._data.dtype))

    with backend.device_scope(input._device):
        if mode == "nearest":
            out = corner([xp.rint(p._data) for p in pos])
            if grid.requires_grad:  # NOTE: grid's gradient is zero (not None), as PyTorch's
                out = out + grid.sum() * 0
        elif mode == "bicubic":
            lo = [xp.floor(p._data) for p in pos]
            ws = [_cubic_weights(p - _const(p, f)) for p, f in zip(pos, lo)]
            out = None
            for i in range(4):
                for j in range(4):
                    taps = [_pad_taps(xp, lo[0] + i - 1, sizes[0], padding_mode, ac),
                            _pad_taps(xp, lo[1] + j - 1, sizes[1], padding_mode, ac)]  # fmt: skip
                    term = corner(taps) * (ws[0][i] * ws[1][j])
                    out = term if out is None else out + term
        else:
            lo = [xp.floor(p._data) for p in pos]
            w1 = [p - _const(p, f) for p, f in zip(pos, lo)]
            out = None
            for bits in itertools.product((0, 1), repeat=nd):
                wt = None
                for b, w in zip(bits, w1):
                    f = w if b else 1 - w
                    wt = f if wt is None else wt * f
                term = corner([f + b for f, b in zip(lo, bits)]) * wt
                out = term if out is None else out + term
    return out.reshape(n, c, *out_shape)


def _base(n: int, align_corners: bool, xp, dt):
    if n == 1:
        return xp.zeros(1, dt)
    v = xp.linspace(-1.0, 1.0, n).astype(dt)
    return v if align_corners else v * dt.type((n - 1) / n)


@backend.on_tensor_device
def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    """The sampling grid of a batch of affine maps, for ``grid_sample``.

    Args:
        theta: (N, 2, 3) for 2-d images or (N, 3, 4) for volumes.
        size: the target's (N, C, H, W) or (N, C, D, H, W).
        align_corners: as in grid_sample (default False).

    Example: ``F.affine_grid(mg.eye(2, 3)[None], (1, 3, 8, 8), align_corners=False)``
    """
    size = tuple(size)
    nd = len(size) - 2
    if nd not in (2, 3) or theta.ndim != 3 or tuple(theta.shape[1:]) != (nd, nd + 1) or (
            theta.shape[0] != size[0]):  # fmt: skip
        raise ShapeError(
            f"affine_grid: expected theta (N, 2, 3) with size (N, C, H, W) or theta (N, 3, 4) "
            f"with size (N, C, D, H, W), got {tuple(theta.shape)} and {size}"
        )
    if align_corners is None:
        warn_caller(_AC_DEFAULT)
    elif align_corners and min(size[2:]) == 1:
        warn_caller("Since version 1.3.0, affine_grid behavior has changed for unit-size grids "
                    "when align_corners=True. This is not an intended use case of affine_grid. "
                    "See the documentation of affine_grid for details.")  # fmt: skip
    xp = backend.array_module(theta._data)
    dt = xp.dtype(theta._data.dtype)
    spatial = size[2:]
    with backend.device_scope(theta._device):
        axes = [_base(k, bool(align_corners), xp, dt) for k in reversed(spatial)]  # x, y(, z)
        mesh = xp.meshgrid(*reversed(axes), indexing="ij")  # each of shape spatial
        base = xp.stack(list(reversed(mesh)) + [xp.ones(spatial, dt)], axis=-1)
        base = base.reshape(1, -1, nd + 1)
    grid = matmul(_const(theta, base), theta.transpose(1, 2))
    return grid.reshape((size[0],) + spatial + (nd,))


from ._common import public  # noqa: E402

__all__ = public(globals())
