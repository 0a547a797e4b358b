"""Multi-tensor optimizer steps on a GPU: Adam/AdamW and SGD update every float32
parameter of a group that sits on one GPU in one launch of ``kernels.adam_step`` /
``kernels.sgd_step`` (``manygrad.kernels.optim_step``) instead of a few eager kernels a
parameter. ``Optimizer.step`` asks ``fused_step(group)`` first and updates the rest (CPU,
fakegpu, 16-bit params, options the kernel lacks) one by one as before. On the CPU,
Adam/AdamW's float32 params take the CPU kernels (``_native.adam_step``): one pass over
each parameter's arrays instead of about twelve NumPy passes.
"""

from __future__ import annotations

from .. import _native, backend
from ..cuda import graphs
from ..tensor import INFERENCE_META
from .optimizer import HALF, host_step, step_up, zeros_state


def _contig(a):
    """A gradient as the launch needs it (C-contiguous; a copy only when it is not)."""
    return backend.array_module(a).ascontiguousarray(a)


def _candidates(opt, group, path):
    """Params of ``group`` with a gradient that the fused path takes: float32 ones, and
    16-bit ones under ``opt.master_weights`` (the kernel updates their float32 copies)."""
    from ..kernels import fastpath

    ps = group["params"]
    if not ps or ps[0]._device.type not in fastpath.FUSED_DEVICES:
        return []  # NOTE: a group on the CPU (or fakegpu) pays only this check
    out = []
    dtypes = ("float32", *HALF) if opt.master_weights else ("float32",)
    for p in group["params"]:
        g = p.grad
        if g is None or g.is_sparse or p._data.dtype.name not in dtypes or (
                g._data.dtype != p._data.dtype):  # fmt: skip
            continue
        if fastpath.wired(path, p._data):
            out.append(p)
    return out


def adam(opt, group) -> set[int]:
    """One ``kernels.adam_step`` launch per GPU (and step count) for ``group``'s float32
    params (on the CPU: ``_cpu_adam``); returns the ids of the params it updated (none
    where an option is missing from the kernel: amsgrad on a GPU, capturable, a step being
    captured)."""
    if group.get("capturable"):
        return set()
    if group["params"] and group["params"][0]._device.type == "cpu":
        return _cpu_adam(opt, group)
    if group.get("amsgrad"):
        return set()
    ps = _candidates(opt, group, "kernels.adam_step")
    if ps and graphs.current_capture() is not None:
        return set()
    if not ps:
        return set()
    from .. import kernels

    sets: dict[tuple, list] = {}
    done = set()
    for p in ps:
        half = p._data.dtype.name in HALF
        st = opt.master_state(p, group) if half else opt.state.get(p)
        if not st:
            st = opt.state[p] = opt.init_state(p._data, group)
        step = host_step(st)
        if step is None:  # a device step count (capturable earlier): one by one
            continue
        done.add(id(p))
        sets.setdefault((p._device, step, half), []).append((p, st))
    flags = kernels.flags(group["decoupled_weight_decay"], group["maximize"])
    for (dev, step, half), items in sets.items():
        h = kernels.hyper(group["lr"], group["betas"], group["eps"], group["weight_decay"],
                          step + 1)  # fmt: skip
        with backend.device_scope(dev):
            ps_, gs_ = [p._data for p, _ in items], [_contig(p.grad._data) for p, _ in items]
            kernels.adam_step(ps_, gs_,
                              [st["exp_avg"]._data for _, st in items],
                              [st["exp_avg_sq"]._data for _, st in items],
                              _masters(items) if half else None,
                              hyper=h, flags=flags)  # fmt: skip
        for _, st in items:
            step_up(st)
    return done


def _cpu_adam(opt, group) -> set[int]:
    """Adam/AdamW's float32 CPU params of ``group`` in the CPU kernels (AMSGrad, maximize
    and either weight decay included); the ids of those updated."""
    from .adam import Adam

    if type(opt).update is not Adam.update:  # NOTE: a subclass with its own rule
        return set()
    items, tensors, steps = [], [], []
    for p in group["params"]:
        g = p.grad
        if g is None or g.is_sparse or p._meta is INFERENCE_META:
            continue
        if p._data.dtype.name != "float32" or g._data.dtype != p._data.dtype:
            continue
        st = opt.state.get(p)
        if not st:
            st = opt.state[p] = opt.init_state(p._data, group)
        step = host_step(st)
        if step is None:
            continue
        vmax = st["max_exp_avg_sq"]._data if group["amsgrad"] else None
        items.append((p, st))
        tensors.append((p._data, g._data, st["exp_avg"]._data, st["exp_avg_sq"]._data, vmax))
        steps.append(step + 1)
    done = _native.adam_step(tensors, steps, group) if items else None
    if not done:
        return set()
    for k in done:
        step_up(items[k][1])
    return {id(items[k][0]) for k in done}


def sgd(opt, group) -> set[int]:
    """One ``kernels.sgd_step`` launch per GPU for ``group``'s float32 params (a first
    step, which sets the momentum buffers to the gradients, launches apart)."""
    if opt.capturable:
        return set()
    ps = _candidates(opt, group, "kernels.sgd_step")
    if ps and graphs.current_capture() is not None:
        return set()
    if not ps:
        return set()
    from .. import kernels

    mom = group["momentum"]
    sets: dict[tuple, list] = {}
    for p in ps:
        half = p._data.dtype.name in HALF
        st = opt.master_state(p, group) if half else opt.state.get(p)
        first = mom != 0 and (not st or st.get("momentum_buffer") is None)
        if first:
            st = st if half else opt.state.setdefault(p, {})
            st["momentum_buffer"] = zeros_state(st["master_param"]._data if half else p._data)
        sets.setdefault((p._device, first, half), []).append((p, st))
    flags = kernels.flags(False, group["maximize"], group["nesterov"])
    for (dev, first, half), items in sets.items():
        h = kernels.hyper(group["lr"], weight_decay=group["weight_decay"], momentum=mom,
                          dampening=group["dampening"], first_step=first)  # fmt: skip
        bufs = [st["momentum_buffer"]._data if mom != 0 else None for _, st in items]
        with backend.device_scope(dev):
            ps_, gs_ = [p._data for p, _ in items], [_contig(p.grad._data) for p, _ in items]
            kernels.sgd_step(ps_, gs_, bufs, _masters(items) if half else None,
                             hyper=h, flags=flags)  # fmt: skip
    return {id(p) for p in ps}


def _masters(items) -> list:
    return [st["master_param"]._data for _, st in items]


__all__ = ["adam", "sgd"]
