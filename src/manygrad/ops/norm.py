"""Normalisation and attention: layer_norm, batch_norm, group_norm, rms_norm and
scaled_dot_product_attention.

Each is one fused Function with an analytic backward pass; none reads tensor values on
the host. float16/bfloat16 inputs are computed in float32 and returned in their dtype.
The dtypes the parameters may have are PyTorch's (``_dtype_rules.check_norm_params``).
"""

from __future__ import annotations

from .. import _native, backend
from .. import dtypes as D
from ..autograd import Function
from ..errors import DeviceError, ShapeError
from ..tensor import Tensor
from . import _group_norm_rows, _norm_rows
from ._dtype_rules import check_norm_params
from .elementwise import _float_input


def _cdt(a):
    """NumPy dtype to compute in: float32 for 16-bit floats."""
    return D.float32.np if a.dtype.itemsize < 4 else a.dtype


def _normalize(xp, x, axes, eps):
    """``(x - mean) / sqrt(var + eps)`` over ``axes``; returns it, 1 / std, mean, var."""
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=axes, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)
    xc *= rstd
    return xc, rstd, mu, var


def _normalize_grad(gxh, xhat, rstd, axes):
    """Gradient through ``xhat = (x - mean) * rstd``, given the gradient ``gxh`` of xhat."""
    xp = backend.array_module(gxh)
    t = gxh * xhat
    m2 = t.mean(axis=axes, keepdims=True)
    xp.multiply(xhat, m2, out=t)
    gx = gxh - gxh.mean(axis=axes, keepdims=True)
    gx -= t
    gx *= rstd
    return gx


def _affine(xhat, w, b):
    y = xhat * w if w is not None else xhat.copy()
    if b is not None:
        y += b
    return y


def _affine_grads(self, g, gx, axes, shape):
    """(gx, gw, gb) with ``gw``/``gb`` summed over ``axes`` and reshaped to ``shape``."""
    _, nw, nb = self.needs_input_grad[:3]
    gw = (g * self.xhat).sum(axis=axes).reshape(shape) if nw else None
    gb = g.sum(axis=axes).reshape(shape) if nb else None
    return gx, gw, gb


def _in_dtype_of(y, x):
    """A reference's output ``y`` in the dtype of its input ``x`` (float32 parameters with
    a 16-bit input promote the reference's products; the op returns the input's dtype)."""
    return y if y.dtype is x.dtype else y.to(x.dtype)


def _check_param(p, shape, name, op):
    if p is not None and tuple(p.shape) != tuple(shape):
        raise ShapeError(f"{op}: {name} must have shape {tuple(shape)}, got {tuple(p.shape)}")


# ---------------------------------------------------------------------------- layer norm


class LayerNorm(Function):
    """Layer norm on the input seen as (rows, D), D the size of the normalised dims."""

    node_name = "NativeLayerNormBackward0"
    graph_inputs = (0, 1, 2)  # input, weight, bias ((None, 0) when there is none)

    def reference(self, x, w, b):
        dims = tuple(range(-len(self.nshape), 0))
        xc = x - x.mean(dims, keepdim=True)
        y = xc * ((xc * xc).mean(dims, keepdim=True) + self.eps).rsqrt()
        y = y if w is None else y * w
        return _in_dtype_of(y if b is None else y + b, x)

    fused = False  # the forward ran the LayerNorm kernel (on a GPU): xhat made in backward
    native = False  # the forward ran the CPU kernels: backward takes them too
    rows_path = False  # the forward ran ops/_norm_rows.py's block loop (CPU)

    def forward(self, x, w, b, nshape, eps):
        xp = backend.array_module(x)
        self.inputs, self.eps = (x, w, b), eps
        out_dt, cdt = x.dtype, _cdt(x)
        self.shape, self.nshape = x.shape, nshape
        if _ln_fusable(x, w, b):
            return self._fused_forward(xp, x, w, b, cdt)
        if cdt == x.dtype:  # NOTE: CPU float32 arrays: one pass a row in C (_native)
            x2, fw = x.reshape(-1, _size(nshape)), _flat(w, cdt)
            fast = _native.layer_norm(x2, fw, _flat(b, cdt), eps)
            if fast is not None:
                y, self.mean, self.rstd = fast
                self.native, self.x2, self.w = True, x2, fw
                return y.reshape(x.shape)
        if _norm_rows.rows_path(x, w, b):
            d = _size(nshape)
            self.w = _flat(w, cdt)
            y, self.xhat, self.rstd = _norm_rows.forward(
                xp, x.reshape(-1, d), self.w, _flat(b, cdt), eps
            )
            self.rows_path = True
            return y.reshape(x.shape)
        x2 = _rows(x, nshape, cdt)
        xc = x2 - _row_mean(xp, x2, xp.ones(x2.shape[1], dtype=cdt))
        var = xp.einsum("ij,ij->i", xc, xc)[:, None] * (1.0 / max(xc.shape[1], 1))
        var += eps
        self.rstd = rstd = xp.sqrt(var, out=var)
        xp.divide(1.0, rstd, out=rstd)
        xc *= rstd
        self.xhat, self.w = xc, _flat(w, cdt)
        y = _affine(xc, self.w, _flat(b, cdt))
        return y.reshape(x.shape).astype(out_dt, copy=False)

    def _fused_forward(self, xp, x, w, b, cdt):
        """``kernels.layer_norm`` (one pass a row); backward keeps the reference formula,
        rebuilding xhat from the kernel's per-row mean and rstd."""
        from ..kernels import layer_norm

        d = _size(self.nshape)
        flat = lambda p: None if p is None else xp.ascontiguousarray(p.reshape(d))  # noqa: E731
        x2 = xp.ascontiguousarray(x.reshape(-1, d))
        y, mean, rstd = layer_norm(x2, flat(w), flat(b), self.eps)
        self.fused, self.x2, self.mean, self.rstd = True, x2, mean, rstd[:, None]
        self.w = _flat(w, cdt)
        return y.reshape(x.shape)

    def backward(self, g):
        xp = backend.array_module(g)
        if self.native:
            _, nw, nb = self.needs_input_grad[:3]
            g2 = xp.ascontiguousarray(g.reshape(self.x2.shape))
            fast = _native.layer_norm_backward(g2, self.x2, self.mean, self.rstd, self.w, nw, nb)
            if fast is not None:
                gx, gw, gb = fast
                return (
                    gx.reshape(self.shape),
                    None if gw is None else gw.reshape(self.nshape),
                    None if gb is None else gb.reshape(self.nshape),
                )
            # NOTE: a gradient the kernels do not take (another dtype): the formulas below
            self.xhat = (self.x2 - self.mean[:, None]) * self.rstd[:, None]
            self.rstd, self.native = self.rstd[:, None], False
        if self.fused and "xhat" not in self.__dict__:
            self.xhat = (self.x2.astype(self.rstd.dtype) - self.mean[:, None]) * self.rstd
            self.x2 = None
        xhat, w = self.xhat, self.w
        g2 = _rows(g, self.nshape, xhat.dtype)
        _, nw, nb = self.needs_input_grad[:3]
        if self.rows_path and g2.dtype == xhat.dtype and backend.device_of(g2).type == "cpu":
            gx, gw, gb = _norm_rows.backward(
                xp, xp.ascontiguousarray(g2), xhat, self.rstd, w, nw, nb
            )
            return (
                gx.reshape(self.shape),
                None if gw is None else gw.reshape(self.nshape),
                None if gb is None else gb.reshape(self.nshape),
            )
        gxhat = g2 * xhat
        # NOTE: column sums as GEMVs with a ones vector: several times faster than .sum(0)
        ones = xp.ones(g2.shape[0], dtype=g2.dtype) if nw or nb else None
        gw = xp.matmul(ones, gxhat).reshape(self.nshape) if nw else None
        gb = xp.matmul(ones, g2).reshape(self.nshape) if nb else None
        # NOTE: dx = rstd * (g w - mean(g w) - xhat * mean(g w xhat)), the row means of
        # weighted products as GEMVs, so that no further full-size temporaries appear
        m1, m2 = _row_mean(xp, g2, w), _row_mean(xp, gxhat, w)
        gx = g2 * w if w is not None else g2.copy()
        gx -= m1
        xp.multiply(xhat, m2, out=gxhat)
        gx -= gxhat
        gx *= self.rstd
        return gx.reshape(self.shape), gw, gb


def _ln_fusable(x, w, b, path="kernels.layer_norm"):
    """A norm takes its kernel ``path``: x on a GPU and affine params of its dtype."""
    if backend.device_of(x).type == "cpu" or x.ndim == 0 or x.size == 0:
        return False
    if any(p is not None and p.dtype != x.dtype for p in (w, b)):
        return False
    from ..kernels import fastpath

    return fastpath.wired(path, x)


def _size(nshape):
    d = 1
    for n in nshape:
        d *= n
    return d


def _rows(a, nshape, cdt):
    """``a`` as (rows, prod(nshape)) in the compute dtype."""
    d = 1
    for n in nshape:
        d *= n
    return a.reshape(-1, d).astype(cdt, copy=False)


def _flat(p, cdt):
    return None if p is None else p.reshape(-1).astype(cdt, copy=False)


def _row_mean(xp, a, w):
    """Mean of each row of ``a`` (rows, D), weighted elementwise by ``w`` (D,) if given."""
    if w is None:
        return a.mean(axis=1, keepdims=True)
    return xp.matmul(a, w)[:, None] * (1.0 / max(a.shape[1], 1))


def _trailing(x, normalized_shape, op):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k :]) != shape:
        raise ShapeError(
            f"{op}: normalized_shape {shape} must match the last dims of the input, got input "
            f"of shape {tuple(x.shape)}"
        )
    return shape


def layer_norm(
    input: Tensor,  # noqa: A002
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims, then scale and shift.

    Ba, Kiros and Hinton, "Layer Normalization" (2016).

    Args:
        input: a float tensor whose last dims equal ``normalized_shape``.
        normalized_shape: an int or tuple: the trailing dims to normalise over.
        weight, bias: elementwise affine parameters of ``normalized_shape`` (default None),
            of the input's dtype (or both float32 for a bfloat16/float16 input).
        eps: added to the variance (default 1e-5).

    Example: ``y = F.layer_norm(x, (512,), gamma, beta)``.
    """
    x = _float_input(input)
    shape = _trailing(x, normalized_shape, "layer_norm")
    _check_param(weight, shape, "weight", "layer_norm")
    _check_param(bias, shape, "bias", "layer_norm")
    check_norm_params("layer_norm", x, (("weight", weight), ("bias", bias)))
    return LayerNorm.apply(x, weight, bias, shape, eps)


# ---------------------------------------------------------------------------- rms norm


class RMSNorm(Function):
    def reference(self, x, w):
        dims = tuple(range(-len(self.nshape), 0))
        y = x * ((x * x).mean(dims, keepdim=True) + self.eps).rsqrt()
        return _in_dtype_of(y if w is None else y * w, x)

    def forward(self, x, w, nshape, eps):
        self.inputs, self.eps = (x, w), eps
        xp = backend.array_module(x)
        out_dt, cdt = x.dtype, _cdt(x)
        self.shape, self.nshape = x.shape, nshape
        if _ln_fusable(x, w, None, "kernels.rms_norm"):
            return self._fused_forward(xp, x, w, cdt)
        x2 = _rows(x, nshape, cdt)
        ms = xp.einsum("ij,ij->i", x2, x2)[:, None] * (1.0 / max(x2.shape[1], 1))
        self.r = 1.0 / xp.sqrt(ms + eps)
        self.xhat, self.w = x2 * self.r, _flat(w, _rms_weight_dt(cdt, w))
        return _affine(self.xhat, self.w, None).reshape(x.shape).astype(out_dt, copy=False)

    fused = False  # the forward ran the RMSNorm kernel (on a GPU): xhat made in backward

    def _fused_forward(self, xp, x, w, cdt):
        """``kernels.rms_norm`` (one pass a row); backward keeps the reference formula,
        rebuilding xhat from the kernel's per-row rstd."""
        from ..kernels import rms_norm

        d = _size(self.nshape)
        x2 = xp.ascontiguousarray(x.reshape(-1, d))
        wf = None if w is None else xp.ascontiguousarray(w.reshape(d))
        y, r = rms_norm(x2, wf, self.eps)
        self.fused, self.x2, self.r, self.w = True, x2, r[:, None], _flat(w, cdt)
        return y.reshape(x.shape)

    def backward(self, g):
        xp = backend.array_module(g)
        if self.fused and "xhat" not in self.__dict__:
            self.xhat, self.x2 = self.x2.astype(self.r.dtype) * self.r, None
        xhat, w = self.xhat, self.w
        g2 = _rows(g, self.nshape, xhat.dtype)
        gxhat = g2 * xhat
        gw = gxhat.sum(axis=0).reshape(self.nshape) if self.needs_input_grad[1] else None
        m = _row_mean(xp, gxhat, w)  # mean(g w xhat) per row
        gx = g2 * w if w is not None else g2.copy()
        xp.multiply(xhat, m, out=gxhat)
        gx -= gxhat
        gx *= self.r
        return gx.reshape(self.shape), gw


def _rms_weight_dt(cdt, w):
    """NumPy dtype of rms_norm's product with the weight.

    NOTE: PyTorch 2.13 takes a weight of any float dtype: the input is normalised in its
    compute dtype (float32 for 16-bit inputs), multiplied by the weight in the promotion of
    that and the weight's dtype (float64 for a float64 weight), and the result is returned
    in the input's dtype; the gradients come in each tensor's own dtype.
    """
    if w is None or w.dtype == cdt:
        return cdt
    return D.promote_types(D.from_np(cdt), D.from_np(w.dtype)).np


def rms_norm(
    input: Tensor,  # noqa: A002
    normalized_shape,
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    """Divide by the root mean square over the trailing dims, then scale.

    Zhang and Sennrich, "Root Mean Square Layer Normalization" (2019).

    Args:
        input: a float tensor whose last dims equal ``normalized_shape``.
        normalized_shape: an int or tuple: the trailing dims to normalise over.
        weight: elementwise scale of ``normalized_shape`` (default None), of any float
            dtype (the result has the input's dtype).
        eps: added to the mean square (default None: the machine epsilon of the dtype the
            op computes in, float32 for 16-bit inputs, as PyTorch).

    Example: ``y = F.rms_norm(x, (512,), gamma)``.
    """
    x = _float_input(input)
    shape = _trailing(x, normalized_shape, "rms_norm")
    _check_param(weight, shape, "weight", "rms_norm")
    if eps is None:
        eps = 2.0**-52 if _cdt(x._data) == D.float64.np else 2.0**-23  # finfo(...).eps
    return RMSNorm.apply(x, weight, shape, eps)


# ---------------------------------------------------------------------------- batch norm


class BatchNorm(Function):
    """Batch norm. CPU float32 arrays (16-bit inputs are computed in float32): the C kernels
    (``_native.batch_norm``), one pass a channel; backward reads the saved input and a mean
    and 1/std per channel, no full-size xhat. Other arrays, and what the kernels decline
    (channels-last inputs): the whole-array formulas with a saved xhat."""

    node_name = "NativeBatchNormBackward0"
    graph_inputs = (0, 1, 2)  # input, weight, bias ((None, 0) when there is none)

    def reference(self, x, w, b):
        ps = self.pshape
        if self.training:
            xc = x - x.mean(self.axes, keepdim=True)
            y = xc * ((xc * xc).mean(self.axes, keepdim=True) + self.eps).rsqrt()
        else:
            y = (x - Tensor._wrap(self.rm)) * Tensor._wrap(self.rstd.reshape(ps))
        y = y if w is None else y * w.reshape(*ps)
        return _in_dtype_of(y if b is None else y + b.reshape(*ps), x)

    native = False  # the forward ran the CPU kernels: backward takes them too

    def forward(self, x, w, b, running, training, momentum, eps):
        self.inputs, self.eps = (x, w, b), eps
        xp = backend.array_module(x)
        out_dt, cdt = x.dtype, _cdt(x)
        x = x.astype(cdt, copy=False)
        c = x.shape[1]
        self.axes = axes = (0,) + tuple(range(2, x.ndim))
        self.pshape = pshape = (1, c) + (1,) * (x.ndim - 2)
        self.training = training
        if cdt == D.float32.np:  # NOTE: CPU float32 arrays: one pass a channel in C
            y = self._native_forward(x, w, b, running, momentum, cdt)
            if y is not None:
                return y.astype(out_dt, copy=False)
        if training:
            self.xhat, self.rstd, mu, var = _normalize(xp, x, axes, eps)
            if running is not None:
                rm, rv = running
                n = x.size // c
                # NOTE: in place and on the device; running_var takes the unbiased variance
                rm *= 1.0 - momentum
                rm += (mu.reshape(c) * momentum).astype(rm.dtype, copy=False)
                rv *= 1.0 - momentum
                rv += (var.reshape(c) * (momentum * n / (n - 1))).astype(rv.dtype, copy=False)
        else:
            rm, rv = running
            self.rstd = 1.0 / xp.sqrt(rv.astype(cdt).reshape(pshape) + eps)
            self.rm = rm.astype(cdt).reshape(pshape)
            self.xhat = (x - rm.astype(cdt).reshape(pshape)) * self.rstd
        self.w = None if w is None else w.astype(cdt).reshape(pshape)
        b = None if b is None else b.astype(cdt).reshape(pshape)
        return _affine(self.xhat, self.w, b).astype(out_dt, copy=False)

    def _native_forward(self, x, w, b, running, momentum, cdt):
        """The output by ``_native.batch_norm`` (training) or ``batch_norm_eval``, with the
        running statistics updated; None when the kernels do not take the arrays."""
        xp = backend.array_module(x)
        fw, fb, c = _flat(w, cdt), _flat(b, cdt), x.shape[1]
        if self.training:
            fast = _native.batch_norm(x, fw, fb, self.eps)
            if fast is None:
                return None
            y, self.mean, self.rstd, var = fast
            if running is not None:
                # NOTE: in float64 from the mean's value and correction, rounded once (as
                # PyTorch's CPU update); running_var takes the unbiased variance
                rm, rv = running
                n, f64 = x.size // c, D.float64.np
                mu = self.mean[0].astype(f64) + self.mean[1]
                rm[...] = rm.astype(f64) * (1.0 - momentum) + mu * momentum
                rv[...] = rv.astype(f64) * (1.0 - momentum) + var * (momentum * n / (n - 1))
        else:
            rm, rv = running
            rstd = 1.0 / xp.sqrt(rv.astype(cdt) + self.eps)
            mean = rm.astype(cdt)
            shift = xp.zeros(c, cdt) if fb is None else fb
            y = _native.batch_norm_eval(x, mean, rstd if fw is None else rstd * fw, shift)
            if y is None:
                return None
            self.mean, self.rstd, self.rm = mean, rstd, mean.reshape(self.pshape)
        # NOTE: backward reads the input (kept in self.inputs) or, if converted, its copy
        self.native, self.wf = True, fw
        self.xc = None if x is self.inputs[0] else x
        return y

    def backward(self, g):
        if self.native:
            x = self.inputs[0] if self.xc is None else self.xc
            g = g.astype(x.dtype, copy=False)
            nx, nw, nb = self.needs_input_grad[:3]
            fast = _native.batch_norm_backward(g, x, self.mean, self.rstd, self.wf, nx,
                                               self.training)  # fmt: skip
            if fast is not None:
                gx, sg, sgx = fast
                return gx, (sgx * self.rstd if nw else None), (sg if nb else None)
            self._numpy_state(x)
        g = g.astype(self.xhat.dtype, copy=False)
        gxh = g * self.w if self.w is not None else g
        if self.training:
            gx = _normalize_grad(gxh, self.xhat, self.rstd, self.axes)
        else:
            gx = gxh * self.rstd
        return _affine_grads(self, g, gx, self.axes, (self.pshape[1],))

    def _numpy_state(self, x):
        """What the NumPy backward reads (xhat, rstd and w shaped as the channels), from
        the kernels' per-channel statistics, for a gradient the kernels do not take."""
        ps = self.pshape
        mean = self.mean if self.mean.ndim == 1 else self.mean[0]
        self.xhat = x - mean.reshape(ps)
        if self.mean.ndim == 2:
            self.xhat -= self.mean[1].reshape(ps)  # NOTE: x - (mean + its correction)
        self.rstd = self.rstd.reshape(ps)
        self.xhat *= self.rstd
        self.w = None if self.wf is None else self.wf.reshape(ps)
        self.native = False


def batch_norm(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (dim 1) over the batch and spatial dims, then scale and shift.

    Ioffe and Szegedy, "Batch Normalization" (2015). In training the batch statistics are
    used and, when given, ``running_mean``/``running_var`` are updated in place (the
    variance unbiased); in evaluation the running statistics are used.

    Args:
        input: shape (N, C) or (N, C, ...).
        running_mean, running_var: per-channel statistics of shape (C,), or None.
        weight, bias: per-channel affine parameters of shape (C,) (default None). The
            statistics and parameters given share one dtype: the input's, or float32 for
            a bfloat16/float16 input.
        training: use batch statistics and update the running ones (default False).
        momentum: weight of the new batch statistics in the running ones (default 0.1).
        eps: added to the variance (default 1e-5).

    Example: ``y = F.batch_norm(x, rm, rv, gamma, beta, training=True)``.
    """
    x = _float_input(input)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: expected input of shape (N, C, ...), got {tuple(x.shape)}")
    c = x.shape[1]
    for name, p in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):  # fmt: skip
        _check_param(p, (c,), name, "batch_norm")
        if p is not None and p.device != x.device:
            raise DeviceError(f"batch_norm: {name} is on {p.device} but the input on {x.device}; "
                              "move it with .to(device)")  # fmt: skip
    check_norm_params("batch_norm", x, (("weight", weight), ("bias", bias),
                      ("running_mean", running_mean), ("running_var", running_var)))  # fmt: skip
    running = None
    if running_mean is not None and running_var is not None:
        running = (running_mean._data, running_var._data)
    if training:
        if x.numel() // max(c, 1) <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"of shape {tuple(x.shape)}"
            )
    elif running is None:
        raise ValueError(
            "batch_norm: running_mean and running_var are needed when training=False; "
            "pass them, or training=True to use the batch statistics"
        )
    return BatchNorm.apply(x, weight, bias, running, training, momentum, eps)


# ---------------------------------------------------------------------------- group norm


class GroupNorm(Function):
    """Group norm. CPU arrays: ops/_group_norm_rows.py, in cache-sized blocks of groups;
    backward reads the saved input and a mean and 1/std per group, no full-size xhat. GPU
    arrays (and the fake GPU's): the whole-array formulas with a saved xhat, which a GPU
    run verified (the blocks' formulas have not run on one)."""

    def reference(self, x, w, b):
        xg = x.reshape(x.shape[0], self.groups, -1)
        xc = xg - xg.mean(2, keepdim=True)
        y = (xc * ((xc * xc).mean(2, keepdim=True) + self.eps).rsqrt()).reshape(*x.shape)
        y = y if w is None else y * w.reshape(*self.pshape)
        return _in_dtype_of(y if b is None else y + b.reshape(*self.pshape), x)

    def forward(self, x, w, b, groups, eps):
        self.inputs, self.eps, self.groups = (x, w, b), eps, groups
        xp = backend.array_module(x)
        out_dt, cdt = x.dtype, _cdt(x)
        self.blocks = backend.device_of(x).type == "cpu"
        if not self.blocks:  # NOTE: GPU arrays: the formulas a GPU run verified
            return self._forward_whole(xp, x, w, b, groups, eps, out_dt, cdt)
        xc = xp.ascontiguousarray(x.astype(cdt, copy=False))
        # NOTE: backward reads the input (kept in self.inputs) or, if converted, its copy
        self.xc, x = (None if xc is x else xc), xc
        self.w = _flat(w, cdt)
        self.pshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)  # for reference
        fb = _flat(b, cdt)
        # NOTE: CPU float32: one pass a group in C (_native), else blocks of NumPy passes
        fast = _native.group_norm(x, groups, self.w, fb, eps)
        y, self.mean, self.rstd = fast or _group_norm_rows.forward(xp, x, groups, self.w, fb, eps)
        return y.astype(out_dt, copy=False)

    def backward(self, g):
        if not self.blocks:
            return self._backward_whole(g)
        xp = backend.array_module(g)
        nx, nw, nb = self.needs_input_grad[:3]
        x = self.inputs[0] if self.xc is None else self.xc
        g = g.astype(x.dtype, copy=False)
        args = (x, self.mean, self.rstd, self.groups, self.w)
        if (fast := _native.group_norm_backward(g, *args, nx, nw, nb)) is not None:
            return fast
        return _group_norm_rows.backward(xp, g, *args, nx, nw, nb)

    def _forward_whole(self, xp, x, w, b, groups, eps, out_dt, cdt):
        n, c = x.shape[:2]
        xg = x.astype(cdt, copy=False).reshape(n, groups, -1)
        self.xhat_g, self.rstd, _, _ = _normalize(xp, xg, (2,), eps)
        self.xhat = self.xhat_g.reshape(x.shape)
        self.pshape = pshape = (1, c) + (1,) * (x.ndim - 2)
        self.axes = (0,) + tuple(range(2, x.ndim))
        self.w = None if w is None else w.astype(cdt).reshape(pshape)
        b = None if b is None else b.astype(cdt).reshape(pshape)
        return _affine(self.xhat, self.w, b).astype(out_dt, copy=False)

    def _backward_whole(self, g):
        g = g.astype(self.xhat.dtype, copy=False)
        gxh = g * self.w if self.w is not None else g
        gx = _normalize_grad(gxh.reshape(self.xhat_g.shape), self.xhat_g, self.rstd, (2,))
        return _affine_grads(self, g, gx.reshape(g.shape), self.axes, (self.pshape[1],))


def group_norm(
    input: Tensor,  # noqa: A002
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over groups of channels (and all spatial dims), then scale and shift.

    Wu and He, "Group Normalization" (2018).

    Args:
        input: shape (N, C, ...), C divisible by ``num_groups``.
        num_groups: number of channel groups.
        weight, bias: per-channel affine parameters of shape (C,) (default None), of the
            input's dtype (or both float32 for a bfloat16/float16 input).
        eps: added to the variance (default 1e-5).

    Example: ``y = F.group_norm(x, 8, gamma, beta)``.
    """
    x = _float_input(input)
    if x.ndim < 2 or num_groups <= 0 or x.shape[1] % num_groups:
        raise ShapeError(
            f"group_norm: expected input of shape (N, C, ...) with C divisible by "
            f"num_groups={num_groups}, got {tuple(x.shape)}"
        )
    _check_param(weight, (x.shape[1],), "weight", "group_norm")
    _check_param(bias, (x.shape[1],), "bias", "group_norm")
    check_norm_params("group_norm", x, (("weight", weight), ("bias", bias)))
    return GroupNorm.apply(x, weight, bias, num_groups, eps)


from ._common import public  # noqa: E402

__all__ = public(globals())
