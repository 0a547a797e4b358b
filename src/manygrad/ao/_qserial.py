"""Quantized tensors in files: what ``mg.save`` writes for one, how ``mg.load`` rebuilds it,
and how one pickled by PyTorch's ``torch.save`` (``torch._utils._rebuild_qtensor``) is read.

``mg.save`` stores the integer codes as an array (and, per channel, the float64 scales and
int64 zero points as two more) and the rest as plain values: ``{"codes": name, "dtype":
"quint8", "scale": 0.1, "zero_point": 3}`` or ``{..., "scales": name, "zero_points": name,
"axis": 0}``. PyTorch pickles ``(storage, offset, size, stride, (qscheme, scale,
zero_point[, axis]), requires_grad, hooks)``, with storages typed ``QUInt8Storage`` etc.

Example:
    >>> mg.save({"w": mg.quantize_per_tensor(x, 0.1, 0, mg.qint8)}, "w.pt")
    >>> mg.load("w.pt")["w"].q_scale()
    0.1
"""

from __future__ import annotations

from .. import backend
from .. import dtypes as D
from ..errors import CheckpointError
from . import qtensor as Q

# PyTorch's storage class of each quantized dtype (the codes' bytes)
TORCH_STORAGES = {"QUInt8Storage": "quint8", "QInt8Storage": "qint8", "QInt32Storage": "qint32"}
QSCHEMES = ("per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
            "per_channel_symmetric", "per_channel_affine_float_qparams")  # fmt: skip


def encode(q: Q.QTensor, store) -> dict:
    """The plain-value description of ``q``; ``store(suffix, obj, array)`` keeps an array in
    the file and returns its name (``obj`` is the object that array belongs to, for ties)."""
    meta = {"codes": store("", q, q._data), "dtype": q._qdtype.name}
    if q._axis is None:
        meta.update(scale=float(q._scale), zero_point=int(q._zp))
    else:
        meta.update(scales=store(".scales", q._scale, q._scale),
                    zero_points=store(".zero_points", q._zp, q._zp), axis=int(q._axis))  # fmt: skip
    return meta


def decode(meta, array, dev, where: str) -> Q.QTensor:
    """The quantized tensor ``encode`` described; ``array(name)`` reads a stored array."""
    try:
        qdtype = D.from_any(meta["dtype"])
        codes = backend.to_device(array(meta["codes"]), dev)
        if qdtype not in D.QUANTIZED or codes.dtype != qdtype.np:
            raise ValueError(f"codes of dtype {codes.dtype} for {qdtype}")
        if "axis" not in meta:
            return Q._make(codes, qdtype, float(meta["scale"]), int(meta["zero_point"]), None, dev)
        xp = backend.xp_of(dev)
        scales = backend.to_device(array(meta["scales"]), dev)
        zps = backend.to_device(array(meta["zero_points"]), dev)
        if zps.dtype.kind == "f":  # NOTE: float qparams (embedding weights) stay float32
            scales, zps = scales.astype(xp.float32), zps.astype(xp.float32)
        else:
            scales, zps = scales.astype(xp.float64), zps.astype(xp.int64)
        return Q._make(codes, qdtype, scales, zps, int(meta["axis"]), dev)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: a damaged quantized tensor record ({e})") from None


def from_torch(codes, qdtype, qparams, where: str) -> Q.QTensor:
    """A quantized tensor from the parts PyTorch pickles: ``codes`` (a Tensor of the storage's
    integers), ``qdtype`` and ``qparams = (qscheme, scale, zero_point[, axis])``."""
    if qdtype not in D.QUANTIZED or not isinstance(qparams, tuple) or not qparams:
        raise CheckpointError(f"{where}: a quantized tensor without a quantized storage or "
                              "quantization parameters (a damaged file)")  # fmt: skip
    scheme = qparams[0]
    a = codes._data.astype(qdtype.np)
    if scheme in (Q.per_tensor_affine, Q.per_tensor_symmetric) and len(qparams) == 3:
        return Q._make(a, qdtype, float(qparams[1]), int(qparams[2]), None, codes._device)
    float_zps = len(qparams) == 4 and getattr(qparams[2], "is_floating_point", bool)()
    if scheme is Q.per_channel_affine_float_qparams or (
        scheme is Q.per_channel_affine and float_zps
    ):  # NOTE: PyTorch pickles float-qparams tensors as per_channel_affine, float zero points
        scales, zps, axis = qparams[1:]
        xp = backend.array_module(a)
        return Q._make(a, qdtype, scales._data.astype(xp.float32), zps._data.astype(xp.float32),
                       int(axis), codes._device)  # fmt: skip
    if scheme in (Q.per_channel_affine, Q.per_channel_symmetric) and len(qparams) == 4:
        scales, zps, axis = qparams[1:]
        xp = backend.array_module(a)
        return Q._make(a, qdtype, scales._data.astype(xp.float64), zps._data.astype(xp.int64),
                       int(axis), codes._device)  # fmt: skip
    raise CheckpointError(
        f"{where}: a quantized tensor with scheme {scheme!r} is not supported by manygrad "
        "(it reads per-tensor and per-channel affine ones); dequantize it before saving"
    )
