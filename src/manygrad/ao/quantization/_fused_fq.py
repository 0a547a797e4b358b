"""``torch.fused_moving_avg_obs_fake_quant``: the moving-average observer, the qparams and
the fake quantization of ``FusedMovingAvgObsFakeQuantize`` (the fake quantizer of PyTorch's
default QAT qconfigs) in one call, with PyTorch's kernel's arithmetic.

The qparams follow the kernel's ``ChooseQuantizationParams``, not the Python observers'
``calculate_qparams``: the range is widened to hold 0 (and made symmetric for symmetric
schemes), the scale is computed in double and cut off below ``6.1e-5`` (the range scaled up
to match), and the zero point comes from whichever end of the range loses less precision.
So a QAT run's fake-quantized values equal PyTorch's step for step.

Example:
    >>> y = mg.fused_moving_avg_obs_fake_quant(x, on, on, run_min, run_max, scale, zp, 0.01,
    ...                                        0, 255, 0, False, False)
"""

from __future__ import annotations

from ... import backend
from ...tensor import Tensor

_SMALL_SCALE = 6.1e-5  # NOTE: the kernel's SMALL_SCALE_THRESHOLD (a float32 constant)


def choose_qparams(mn, mx, qmin: int, qmax: int, preserve_sparsity: bool):
    """``(scale float32, zero_point int64)`` arrays for host arrays of minima and maxima."""
    np = backend.np
    f32, f64 = np.float32, np.float64
    thr = f32(_SMALL_SCALE)
    mn = np.asarray(mn, f32).copy()
    mx = np.asarray(mx, f32).copy()
    if preserve_sparsity:
        both = (mn < 0) & (mx > 0)
        sq_min, sq_max = -((qmax - qmin) // 2 + 1), (qmax - qmin) // 2
        ms = np.maximum(np.abs(mn / f32(sq_min)), np.abs(mx / f32(sq_max))).astype(f64)
        mn = np.where(both, (ms * sq_min).astype(f32), mn)
        mx = np.where(both, (ms * sq_max).astype(f32), mx)
    mn, mx = np.minimum(mn, f32(0)), np.maximum(mx, f32(0))
    scale = (mx.astype(f64) - mn.astype(f64)) / (qmax - qmin)
    with backend.quiet_float_errors():
        s32 = scale.astype(f32)
        scale = np.where((s32 == 0) | np.isinf(f32(1) / s32), 0.1, scale)
        small = scale < f64(thr)
        if small.any():  # NOTE: the range grows with the scale, as the kernel's
            amp = thr / scale.astype(f32)
            span = thr * f32(qmax - qmin)
            mx2 = np.where(mn == 0, span, np.where(mx == 0, mx, mx * amp))
            mn2 = np.where(mn == 0, mn, np.where(mx == 0, -span, mn * amp))
            mn = np.where(small, mn2, mn).astype(f32)
            mx = np.where(small, mx2, mx).astype(f32)
            scale = np.where(small, f64(thr), scale)
    from_min, from_max = qmin - mn / scale, qmax - mx / scale
    err_min = abs(qmin) - np.abs(mn / scale)
    err_max = abs(qmax) - np.abs(mx / scale)
    init = np.where(err_min < err_max, from_min, from_max)
    if preserve_sparsity:
        init = np.where((mn < 0) & (mx > 0), (qmin + qmax) / 2, init)
    zp = np.where(init < qmin, qmin, np.where(init > qmax, qmax, np.rint(init)))
    return scale.astype(f32), zp.astype(np.int64)


def _set(t: Tensor, values) -> None:
    """Write host ``values`` into ``t`` in place (resized when it holds none yet)."""
    import manygrad as mg

    v = mg.tensor(values, dtype=t.dtype, device=t.device)
    if t.shape != v.shape:
        t.resize_(v.shape)
    with mg.no_grad():
        t.copy_(v)


def fused_moving_avg_obs_fake_quant(
    input: Tensor, observer_on: Tensor, fake_quant_on: Tensor, running_min: Tensor,
    running_max: Tensor, scale: Tensor, zero_point: Tensor, averaging_const: float,
    quant_min: int, quant_max: int, ch_axis: int, per_row_fake_quant: bool = False,
    symmetric_quant: bool = False,
) -> Tensor:  # fmt: skip
    """Observe ``input`` into ``running_min`` / ``running_max`` (a moving average with weight
    ``averaging_const``; the first batch sets them) while ``observer_on``, then, while
    ``fake_quant_on``, write the qparams into ``scale`` / ``zero_point`` and return ``input``
    fake-quantized (straight-through gradient); per row along dim 0 when
    ``per_row_fake_quant``. Otherwise ``input`` comes back as a copy."""
    import manygrad as mg

    np = backend.np
    if ch_axis >= input.ndim:
        raise RuntimeError("Error in fused_moving_avg_obs_fake_quant_cpu: ch_axis must be < "
                           "self.dim()")  # fmt: skip
    x = input.detach()
    if per_row_fake_quant:
        if ch_axis != 0:
            raise RuntimeError("Per-channel FakeQuant in fused_moving_avg_obs_fake_quant is only "
                               "supported on axis == 0")  # fmt: skip
        n = input.shape[ch_axis]
        if running_min.numel() == 0:
            _set(running_min, np.full(n, np.inf, np.float32))
            _set(running_max, np.full(n, -np.inf, np.float32))
            _set(scale, np.ones(n, np.float32))
            _set(zero_point, np.zeros(n, np.int64))
    if int(observer_on.reshape(-1)[0]) != 0:
        if per_row_fake_quant:
            lo, hi = mg.aminmax(x.reshape(x.shape[0], -1).float(), dim=1)
        else:
            lo, hi = mg.aminmax(x.float())
        lo = np.asarray(lo.cpu().numpy(), np.float32).reshape(-1)
        hi = np.asarray(hi.cpu().numpy(), np.float32).reshape(-1)
        rmin = np.asarray(running_min.cpu().numpy(), np.float32).reshape(-1)
        rmax = np.asarray(running_max.cpu().numpy(), np.float32).reshape(-1)
        c = np.float32(averaging_const)
        rmin = np.where(np.isinf(rmin), lo, rmin + c * (lo - rmin)).astype(np.float32)
        rmax = np.where(np.isinf(rmax), hi, rmax + c * (hi - rmax)).astype(np.float32)
        _set(running_min, rmin.reshape(tuple(running_min.shape)))
        _set(running_max, rmax.reshape(tuple(running_max.shape)))
    if int(fake_quant_on.reshape(-1)[0]) == 0:
        return input.clone()
    rmin = running_min.cpu().numpy().reshape(-1)
    rmax = running_max.cpu().numpy().reshape(-1)
    if not per_row_fake_quant:
        rmin, rmax = rmin[:1], rmax[:1]
    if (rmin > rmax).any():
        raise RuntimeError("In ChooseQuantizationParams, min should be less than or equal to max")
    sc, zp = choose_qparams(rmin, rmax, int(quant_min), int(quant_max), bool(symmetric_quant))
    if per_row_fake_quant:
        _set(scale, sc)
        _set(zero_point, zp)
        return mg.fake_quantize_per_channel_affine(
            input, scale.float(), zero_point.int(), ch_axis, quant_min, quant_max
        )
    with mg.no_grad():
        scale.reshape(-1)[0] = float(sc[0])
        zero_point.reshape(-1)[0] = int(zp[0])
    return mg.fake_quantize_per_tensor_affine(input, float(sc[0]), int(zp[0]), quant_min,
                                              quant_max)  # fmt: skip
