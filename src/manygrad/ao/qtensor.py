"""Quantized tensors: integer codes plus ``scale`` / ``zero_point`` (one pair, or one per
slice along ``axis``), with PyTorch's ``torch.quantize_per_tensor`` family.

A ``QTensor`` is a ``Tensor`` whose ``dtype`` is ``qint8``, ``quint8``, ``qint32`` or
``quint4x2`` and whose array holds the integer codes. As in PyTorch it supports movement
(view, reshape, permute, indexing, ...), ``relu``, ``sigmoid``, ``tanh``, ``clamp``,
``dequantize()`` and the ``q_*`` accessors; arithmetic is refused: dequantize first, or use
a quantized module.

Example:
    >>> q = mg.quantize_per_tensor(mg.tensor([-1.0, 0.26]), 0.1, 0, mg.qint8)
    >>> q.int_repr(), q.dequantize()
    (tensor([-10,   3], dtype=manygrad.int8), tensor([-1.0000,  0.3000]))
"""

from __future__ import annotations

from .. import backend
from .. import dtypes as D
from ..errors import DimError, DTypeError, ShapeError
from ..tensor import Tensor
from . import _qmath


class qscheme:  # noqa: N801 - PyTorch's name
    """How a quantized tensor maps codes to values (``mg.per_tensor_affine``, ...)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"{D.display_module}.{self.name}"

    def __reduce__(self):
        return self.name  # NOTE: the module-level singleton of that name (copies are it)


per_tensor_affine = qscheme("per_tensor_affine")
per_channel_affine = qscheme("per_channel_affine")
per_tensor_symmetric = qscheme("per_tensor_symmetric")
per_channel_symmetric = qscheme("per_channel_symmetric")
per_channel_affine_float_qparams = qscheme("per_channel_affine_float_qparams")

# Tensor methods a quantized tensor keeps (the rest are refused, see _refuse)
_KEEP = {
    "size", "dim", "numel", "nelement", "element_size", "is_contiguous", "stride",
    "storage_offset", "data_ptr", "is_floating_point", "is_complex", "type", "get_device",
    "is_signed", "untyped_storage", "__len__", "__hash__", "__format__",
    "__reduce_ex__", "__reduce__", "__sizeof__", "__init_subclass__", "__subclasshook__",
    "__class_getitem__", "__getattribute__", "__setattr__", "__delattr__", "__dir__",
    "__init__", "__new__", "__repr__", "__str__", "__deepcopy__", "__copy__", "register_hook",
    "is_set_to", "is_shared", "is_pinned", "ndimension",
}  # fmt: skip


class QTensor(Tensor):
    """A quantized tensor (see the module docstring); make one with ``mg.quantize_per_tensor``
    or ``mg.quantize_per_channel``."""

    __slots__ = ("_qdtype", "_scale", "_zp", "_axis")

    @property
    def dtype(self) -> D.dtype:
        return self._qdtype

    @property
    def is_quantized(self) -> bool:
        return True

    @property
    def data(self) -> QTensor:
        return self.detach()

    # ------------------------------------------------------------- quantization parameters
    def qscheme(self) -> qscheme:
        if self._axis is None:
            return per_tensor_affine
        # NOTE: float zero points (embedding weights): PyTorch's float-qparams scheme
        return per_channel_affine_float_qparams if self._zp.dtype.kind == "f" else (
            per_channel_affine)  # fmt: skip

    def _need(self, per_channel: bool, what: str) -> None:
        if (self._axis is not None) != per_channel:
            raise RuntimeError(
                f"{what}: this tensor is quantized {self.qscheme().name}; use "
                + (
                    "q_per_channel_scales() / q_per_channel_zero_points()"
                    if self._axis is not None
                    else "q_scale() / q_zero_point()"
                )  # fmt: skip
            )

    def q_scale(self) -> float:
        self._need(False, "q_scale")
        return self._scale

    def q_zero_point(self) -> int:
        self._need(False, "q_zero_point")
        return self._zp

    def q_per_channel_scales(self) -> Tensor:
        self._need(True, "q_per_channel_scales")
        return Tensor._wrap(self._scale.copy(), self._device)

    def q_per_channel_zero_points(self) -> Tensor:
        self._need(True, "q_per_channel_zero_points")
        return Tensor._wrap(self._zp.copy(), self._device)

    def q_per_channel_axis(self) -> int:
        self._need(True, "q_per_channel_axis")
        return self._axis

    def _channel_shape(self):
        if self._axis is None:
            return None
        shape = [1] * self.ndim
        shape[self._axis] = -1
        return tuple(shape)

    def int_repr(self) -> Tensor:
        """The integer codes as a plain tensor (quint4x2: two codes a byte, low nibble first)."""
        a = self._data.copy()
        if self._qdtype is D.quint4x2:
            xp = backend.array_module(a)
            flat = a.reshape(-1)
            if flat.size % 2:
                flat = xp.concatenate([flat, xp.zeros(1, flat.dtype)])
            a = (flat[0::2] | (flat[1::2] << 4)).astype(xp.uint8)
        return Tensor._wrap(a, self._device)

    def dequantize(self) -> Tensor:
        """The float32 values ``(int_repr - zero_point) * scale``."""
        return Tensor._wrap(
            _qmath.dequantize(self._data, self._scale, self._zp, self._channel_shape()),
            self._device,
        )

    # ------------------------------------------------------------- movement
    def _like(self, codes: Tensor) -> QTensor:
        return _make(codes._data, self._qdtype, self._scale, self._zp, self._axis, codes._device)

    def _codes(self, op: str) -> Tensor:
        if self._axis is not None and op not in ("clone", "detach", "contiguous", "to", "cpu"):
            raise NotImplementedError(
                f"{op}: manygrad supports it on per-tensor quantized tensors only; this one is "
                f"{self.qscheme().name} (axis {self._axis}): dequantize() first"
            )
        return Tensor._wrap(self._data, self._device)

    def clone(self, *, memory_format=None) -> QTensor:
        return self._like(self._codes("clone").clone())

    def detach(self) -> QTensor:
        return self._like(self._codes("detach"))

    def contiguous(self, memory_format=None) -> QTensor:
        return self._like(self._codes("contiguous").contiguous())

    def to(self, *args, **kwargs) -> QTensor:
        dts = [a for a in (*args, kwargs.get("dtype")) if isinstance(a, (D.dtype, Tensor))]
        if any((a.dtype if isinstance(a, Tensor) else a) is not self._qdtype for a in dts):
            raise RuntimeError(
                f"to: a quantized tensor ({self._qdtype}) cannot be cast to another dtype; "
                "use x.dequantize() for float values or x.int_repr() for the integer codes"
            )
        args = [a for a in args if not isinstance(a, (D.dtype, Tensor))]
        kwargs.pop("dtype", None)
        return self._like(self._codes("to").to(*args, **kwargs))

    def cpu(self) -> QTensor:
        return self.to("cpu")

    def __getitem__(self, index) -> QTensor:
        return self._like(self._codes("__getitem__")[index])

    def __iter__(self):
        return iter(self.unbind(0))

    def unbind(self, dim: int = 0) -> tuple:
        return tuple(self._like(t) for t in self._codes("unbind").unbind(dim))

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        return tuple(self._like(t) for t in self._codes("chunk").chunk(chunks, dim))

    def split(self, split_size, dim: int = 0) -> tuple:
        return tuple(self._like(t) for t in self._codes("split").split(split_size, dim))

    def relu(self) -> QTensor:
        """Codes below the zero point go to it (the quantized value of 0.0)."""
        xp = backend.array_module(self._data)
        zp = self._zp if self._axis is None else self._zp.reshape(self._channel_shape())
        return _make(xp.maximum(self._data, zp).astype(self._data.dtype), self._qdtype,
                     self._scale, self._zp, self._axis, self._device)  # fmt: skip

    def relu_(self) -> QTensor:
        """``relu`` in place."""
        return self._inplace("relu_", QTensor.relu)

    def _inplace(self, name, fn, *args, **kwargs) -> QTensor:
        # NOTE: F.relu6 / hardtanh / leaky_relu / hardsigmoid with inplace=True: the codes
        # and the result's qparams (hardsigmoid's are fixed) become this tensor's, as in PyTorch
        r = fn(self.detach(), *args, **kwargs)
        if not isinstance(r, QTensor) or r._qdtype is not self._qdtype or r.shape != self.shape:
            raise RuntimeError(f"{name}: the result cannot be written into this quantized "
                               "tensor; use the out-of-place form")  # fmt: skip
        self._data[...] = r._data
        self._scale, self._zp, self._axis = r._scale, r._zp, r._axis
        return self

    def sigmoid(self) -> QTensor:
        """Quantized sigmoid, with PyTorch's fixed output qparams (scale 1/256)."""
        from . import _qops

        return _qops.unary("sigmoid", self)

    def tanh(self) -> QTensor:
        """Quantized tanh, with PyTorch's fixed output qparams (scale 2/256)."""
        from . import _qops

        return _qops.unary("tanh", self)

    def clamp(self, min=None, max=None) -> QTensor:  # noqa: A002 - PyTorch's names
        """Codes clipped at the codes of ``min`` and ``max`` (the qparams stay)."""
        from ..ops.elementwise import clamp

        return clamp(self, min, max)

    clip = clamp

    def mean(self, dim=None, keepdim: bool = False, dtype=None) -> QTensor:
        """The mean of the codes over ``dim``, with this tensor's qparams (PyTorch's quantized
        mean)."""
        from ..ops.reduce import mean

        return mean(self, dim, keepdim, dtype)

    def equal(self, other) -> bool:
        """Same dtype, scheme, quantization parameters, shape and codes."""
        if not isinstance(other, QTensor):
            return False
        xp = backend.array_module(self._data)
        same = (self._qdtype is other._qdtype and self._axis == other._axis
                and self.shape == other.shape)  # fmt: skip
        if same and self._axis is None:
            same = self._scale == other._scale and self._zp == other._zp
        elif same:
            same = bool((self._scale == other._scale).all() and (self._zp == other._zp).all())
        return same and bool(xp.array_equal(self._data, other._data))

    def __deepcopy__(self, memo) -> QTensor:
        out = _make(self._data.copy(), self._qdtype, _copy(self._scale), _copy(self._zp),
                    self._axis, self._device)  # fmt: skip
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, protocol):
        # NOTE: codes as a CPU array, rebuilt on the tensor's device (deepcopy, pickle)
        cpu = backend.to_device(self._data, backend.device("cpu"))
        return (_rebuild, (cpu, self._qdtype.name, _copy(self._scale), _copy(self._zp),
                           self._axis, str(self._device)))  # fmt: skip

    def requires_grad_(self, requires_grad: bool = True) -> QTensor:
        if requires_grad:
            raise RuntimeError(
                "only Tensors of floating point dtype can require gradients; a quantized "
                "tensor cannot (for quantization-aware training use FakeQuantize)"
            )
        return self

    def __repr__(self) -> str:
        from .._tensor_str import add_suffixes, tensor_str

        extra = [f"size={tuple(self.shape)}", f"dtype={self._qdtype}",
                 f"quantization_scheme={self.qscheme()}"]  # fmt: skip
        if self._axis is None:
            extra += [f"scale={self._scale!r}", f"zero_point={self._zp}"]
        else:
            extra += [f"scale={self.q_per_channel_scales()!r}",
                      f"zero_point={self.q_per_channel_zero_points()!r}", f"axis={self._axis}"]  # fmt: skip
        if self._device.type != "cpu":
            extra.insert(0, f"device='{self._device}'")
        return add_suffixes("tensor(" + tensor_str(self.dequantize()._data, 7), extra, 7)

    __str__ = __repr__


def _movement(name: str):
    def method(self, *args, **kwargs):
        return self._like(getattr(self._codes(name), name)(*args, **kwargs))

    method.__name__ = name
    method.__doc__ = f"``Tensor.{name}`` on the codes; the quantization parameters carry over."
    return method


for _name in ("view", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute", "t",
              "narrow", "select", "flip", "expand", "repeat", "view_as", "reshape_as",
              "movedim", "swapaxes", "index_select"):  # fmt: skip
    setattr(QTensor, _name, _movement(_name))


def _refuse(name: str):
    def method(self, *args, **kwargs):
        raise NotImplementedError(
            f"{name.strip('_')}: not supported on quantized tensors (dtype {self._qdtype}), as "
            "in PyTorch; compute on x.dequantize() (and quantize the result again), or use a "
            "quantized module from torch.ao.nn.quantized"
        )

    method.__name__ = name
    return method


def _refuse_the_rest() -> None:
    own = set(vars(QTensor))
    for name in dir(Tensor):
        if name in own or name in _KEEP or (name.startswith("_") and not name.startswith("__")):
            continue
        attr = getattr(Tensor, name, None)
        if callable(attr) and not isinstance(attr, type):
            setattr(QTensor, name, _refuse(name))
    QTensor.__hash__ = Tensor.__hash__


_refuse_the_rest()


def _copy(v):
    return v.copy() if hasattr(v, "copy") else v


def _rebuild(codes, qdtype: str, scale, zp, axis, device: str) -> QTensor:
    """A pickled quantized tensor (``QTensor.__reduce_ex__``)."""
    dev = backend.device(device)
    return _make(backend.to_device(codes, dev), D.from_any(qdtype), scale, zp, axis, dev)


def _make(codes, qdtype, scale, zp, axis, device=None) -> QTensor:
    t = QTensor.__new__(QTensor)
    t._data = codes
    t._device = device if device is not None else backend.device_of(codes)
    t.requires_grad = False
    t._grad = t.grad_fn = t._vc = t._base = t._meta = None
    t._qdtype, t._scale, t._zp, t._axis = qdtype, scale, zp, axis
    return t


# ----------------------------------------------------------------------------- functions
def _check_input(fn: str, input, qdtype) -> D.dtype:
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: expected a Tensor input, got {type(input).__name__}")
    if input.dtype is not D.float32:
        raise DTypeError(
            f"{fn}: Quantize only works on Float Tensor, got {input.dtype}; convert it first, "
            "e.g. x.float()"
        )
    qdtype = D.from_any(qdtype)
    if qdtype not in D.QUANTIZED:
        raise DTypeError(
            f"{fn}: dtype must be a quantized dtype (qint8, quint8, qint32, quint4x2), got {qdtype}"
        )
    return qdtype


def _check_zp(fn: str, zp: int, qdtype) -> None:
    lo, hi = _qmath.RANGES[qdtype.name]
    if not lo <= zp <= hi:
        raise RuntimeError(
            f"{fn}: zero_point {zp} is out of the range of {qdtype} [{lo}, {hi}]; pick one "
            "inside it"
        )


def _scalar(v, kind):
    if isinstance(v, Tensor):
        if v.numel() != 1:
            raise ShapeError(f"expected a one-element tensor, got shape {tuple(v.shape)}")
        return kind(v.float().item() if kind is float else v.item())
    return kind(v)


def quantize_per_tensor(input, scale, zero_point, dtype):
    """``input`` (float32) quantized with one ``scale`` and ``zero_point``:
    ``clamp(round_half_even(x / scale + zero_point), qmin, qmax)``.

    Args:
        input: a float32 tensor, or a list of them (then ``scale`` and ``zero_point`` are
            1-d tensors with one entry each).
        scale: float or one-element tensor (a tensor is read as float32).
        zero_point: int or one-element tensor, inside the dtype's range.
        dtype: ``mg.qint8``, ``mg.quint8``, ``mg.qint32`` or ``mg.quint4x2``.

    Example: ``mg.quantize_per_tensor(x, 0.1, 10, mg.quint8)``
    """
    if isinstance(input, (list, tuple)):
        return [quantize_per_tensor(t, scale[i], zero_point[i], dtype) for i, t in enumerate(input)]
    fn = "quantize_per_tensor"
    qdtype = _check_input(fn, input, dtype)
    sc, zp = _scalar(scale, float), _scalar(zero_point, int)
    _check_zp(fn, zp, qdtype)
    return _make(_qmath.quantize(input._data, sc, zp, qdtype), qdtype, sc, zp, None, input._device)


def quantize_per_tensor_dynamic(input, dtype, reduce_range: bool):
    """Quantization with ``scale`` and ``zero_point`` chosen from ``input``'s min and max
    (``reduce_range`` halves the integer range, as fbgemm's dynamic ops do)."""
    fn = "quantize_per_tensor_dynamic"
    qdtype = _check_input(fn, input, dtype)
    if qdtype not in (D.qint8, D.quint8):
        raise DTypeError(f"{fn}: dtype must be qint8 or quint8, got {qdtype}")
    a = input._data
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    sc, zp = _qmath.choose_qparams(lo, hi, *_qmath.RANGES[qdtype.name], reduce_range)
    return _make(_qmath.quantize(a, sc, zp, qdtype), qdtype, sc, zp, None, input._device)


def quantize_per_channel(input, scales, zero_points, axis: int, dtype):
    """``input`` quantized with one scale and zero point per slice along ``axis``.

    Args:
        input: a float32 tensor.
        scales: 1-d tensor of ``input.shape[axis]`` scales (kept as float64).
        zero_points: 1-d integer tensor of the same size (kept as int64).
        axis: the dim the parameters run along (0 <= axis < input.dim()).
        dtype: a quantized dtype.
    """
    fn = "quantize_per_channel"
    qdtype = _check_input(fn, input, dtype)
    for name, t in (("scales", scales), ("zero_points", zero_points)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a 1-d Tensor, got {type(t).__name__}")
    nd = input.ndim
    if not 0 <= axis < nd:
        raise DimError(
            f"{fn}: channel axis {axis} is out of range for a {nd}-d input; expected in [0, {nd})"
        )
    n = input.shape[axis]
    if tuple(scales.shape) != (n,) or tuple(zero_points.shape) != (n,):
        raise ShapeError(
            f"{fn}: expected {n} scales and zero points (input.shape[{axis}]), got shapes "
            f"{tuple(scales.shape)} and {tuple(zero_points.shape)}"
        )
    xp = backend.array_module(input._data)
    lo, hi = _qmath.RANGES[qdtype.name]
    if zero_points.is_floating_point():  # NOTE: float qparams (per_channel_affine_float_qparams)
        if qdtype is D.qint32:
            raise DTypeError(f"{fn}: float zero points (per_channel_affine_float_qparams) "
                             "are not supported for qint32; use integer zero points, e.g. "
                             "zero_points.long()")  # fmt: skip
        sc, zp = scales._data.astype(xp.float32), zero_points._data.astype(xp.float32)
    else:
        sc, zp = scales._data.astype(xp.float64), zero_points._data.astype(xp.int64)
    if zp.dtype.kind == "i" and zp.size and (int(zp.min()) < lo or int(zp.max()) > hi):
        _check_zp(fn, int(zp.min()) if int(zp.min()) < lo else int(zp.max()), qdtype)
    shape = [1] * nd
    shape[axis] = -1
    codes = _qmath.quantize(input._data, sc, zp, qdtype, tuple(shape))
    return _make(codes, qdtype, sc, zp, axis, input._device)


def dequantize(input):  # noqa: A002 - PyTorch's name
    """``input.dequantize()``; a list of tensors gives a list; a float tensor comes back."""
    if isinstance(input, (list, tuple)):
        return [dequantize(t) for t in input]
    return input.dequantize() if isinstance(input, QTensor) else input


def int_repr(input) -> Tensor:
    """The integer codes of a quantized tensor, as a plain integer tensor."""
    return _quantized_only("int_repr", input).int_repr()


def q_scale(input) -> float:
    """The scale of a per-tensor quantized tensor."""
    return _quantized_only("q_scale", input).q_scale()


def q_zero_point(input) -> int:
    """The zero point of a per-tensor quantized tensor."""
    return _quantized_only("q_zero_point", input).q_zero_point()


def q_per_channel_scales(input) -> Tensor:
    """The float64 scales of a per-channel quantized tensor."""
    return _quantized_only("q_per_channel_scales", input).q_per_channel_scales()


def q_per_channel_zero_points(input) -> Tensor:
    """The int64 zero points of a per-channel quantized tensor."""
    return _quantized_only("q_per_channel_zero_points", input).q_per_channel_zero_points()


def q_per_channel_axis(input) -> int:
    """The dim a per-channel quantized tensor's parameters run along."""
    return _quantized_only("q_per_channel_axis", input).q_per_channel_axis()


def _quantized_only(fn: str, input) -> QTensor:
    if not isinstance(input, QTensor):
        raise RuntimeError(
            f"{fn}: expected a quantized tensor, got a {getattr(input, 'dtype', type(input))} "
            "one; quantize it first, e.g. mg.quantize_per_tensor(x, scale, zero_point, mg.qint8)"
        )
    return input


__all__ = [
    "QTensor", "qscheme", "per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
    "per_channel_symmetric", "per_channel_affine_float_qparams", "quantize_per_tensor",
    "quantize_per_tensor_dynamic", "quantize_per_channel", "dequantize", "int_repr", "q_scale",
    "q_zero_point", "q_per_channel_scales", "q_per_channel_zero_points", "q_per_channel_axis",
]  # fmt: skip
