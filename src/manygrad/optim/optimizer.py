"""``Optimizer``: PyTorch's optimizer interface over small per-parameter update rules.

A subclass only says how to start a parameter's state (``init_state``) and how to update
one parameter from its gradient (``update``), both on raw arrays and in place, in the
style of MLX's optimizers. The base class owns the rest: ``param_groups``, ``state``,
``zero_grad``, ``step`` and ``state_dict`` / ``load_state_dict`` in PyTorch's format.

The update rules never record a graph and never read device values on the host: as in
PyTorch, a parameter's step count is a 0-d float32 tensor kept on the CPU (on the
parameter's device for ``capturable=True``), read and bumped in place on the host, and
every hyperparameter is a Python float, so a step queues only array work on the GPU.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from .. import backend
from .._inference_mark import INFERENCE_META
from ..autograd import _inference, enable_grad
from ..errors import LayoutError
from ..sparse import SparseCooTensor
from ..tensor import Tensor
from ._hooks import (  # noqa: F401  (PyTorch's torch.optim.optimizer names)
    OptimizerHooks,
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from ._scalars import (  # noqa: F401  (the optimizers import them from here)
    _HOST,
    _cast_scalar,
    host_scalar,
    host_step,
    new_step,
    read_scalar,
    scalar_dtype,
    step_up,
    write_scalar,
)

HALF = ("bfloat16", "float16")  # dtypes that ``master_weights`` updates through float32


class _RequiredParameter:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _as_real(a):
    """A complex array's memory as real numbers (the last dim doubled), for updates."""
    if not a.flags.c_contiguous:
        raise ValueError("optimizer: complex parameters and gradients must be contiguous")
    return a.view(a.real.dtype)


class Optimizer(OptimizerHooks):
    """Base of all optimizers.

    Args:
        params: an iterable of tensors to optimize, of ``(name, tensor)`` pairs, or of
            dicts (param groups) with a ``"params"`` entry and per-group options.
        defaults: the options every group gets unless it sets its own.

    ``opt.master_weights = True`` (manygrad's option) updates bf16/fp16 parameters through
    float32 copies kept in their state as ``"master_param"`` (moments in float32 too), then
    rounds the copy into the parameter: bf16 training that loses no small updates.

    Example:
        >>> opt = mg.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.1}], lr=0.01)
    """

    # NOTE: ``fused_step(opt, group)`` updates what it can of a group in one launch on a GPU
    # and returns the ids of those params (``_fused.py``); None: one by one only
    fused_step: Callable | None = None
    # NOTE: manygrad's option (PyTorch has none): 16-bit params update through float32
    # copies kept in their state as "master_param" (bf16 training end to end on a GPU)
    master_weights: bool = False
    # NOTE: the 0-d state entries PyTorch keeps as tensors beside the step count (NAdam's
    # "mu_product", ASGD's "eta" and "mu"); loading turns Python numbers into such tensors
    scalar_state: tuple[str, ...] = ("step",)

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._scratch: dict = {}
        self._opt_called = False
        self._init_hooks()
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of tensors or dicts, "
                "got a single Tensor; wrap it in a list: [t]"
            )
        groups = list(params)
        if not groups:
            raise ValueError(
                f"{type(self).__name__} got an empty parameter list; pass "
                "model.parameters() or a list of tensors created with requires_grad=True"
            )
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    # ------------------------------------------------------------------ to override
    def init_state(self, p, group: dict) -> dict[str, Any]:
        """The state of a parameter (raw array ``p``) before its first update."""
        return {}

    def update(self, p, g, state: dict, group: dict) -> None:  # pragma: no cover
        """Update the raw array ``p`` in place from its gradient ``g``."""
        raise NotImplementedError

    def sparse_update(self, p, grad: SparseCooTensor, state: dict, group: dict) -> None:
        """Update the raw array ``p`` in place from a sparse gradient (the rows of an
        ``nn.Embedding(sparse=True)``); optimizers without a sparse update refuse it."""
        raise LayoutError(
            f"{type(self).__name__} does not support sparse gradients; use optim.SparseAdam, "
            "SGD or Adagrad for them, or make the embedding dense (sparse=False)"
        )

    # ------------------------------------------------------------------ public API
    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines) + "\n)"

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. a layer to fine-tune).

        Example:
            >>> opt.add_param_group({"params": head_params, "lr": 1e-2})
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters must be an ordered collection (the order of a set "
                "changes between runs); use a list instead"
            )
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("give either all parameters with names or none")
            param_group["param_names"] = names
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizers can only optimize Tensors, but one of the params is "
                    f"{type(p).__name__}"
                )
            if p.grad_fn is not None:
                raise ValueError(
                    "can't optimize a non-leaf Tensor (it is the result of an op); "
                    "optimize the leaf it came from, or use t.detach().requires_grad_()"
                )
        if len({id(p) for p in params}) != len(params):
            # NOTE: PyTorch warns here too (and steps such a parameter once per listing)
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters: each listing "
                "is stepped, so that parameter moves more than once per step; list each "
                "parameter once (e.g. list(dict.fromkeys(params)))",
                UserWarning,
                stacklevel=3,
            )
        param_group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required {name}")
            param_group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: drop them (default) or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif p.grad.__class__ is SparseCooTensor:  # NOTE: as PyTorch: no entries left
                    p.grad.zero_()
                else:
                    p.grad.grad_fn = None
                    p.grad.requires_grad = False
                    with backend.device_scope(p._device):
                        p.grad._data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; returns ``closure()`` if given.

        Args:
            closure: re-evaluates the model and returns the loss (needed by some
                optimizers, optional here).
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self._opt_called = True
        state, update, init = self.state, self.update, self.init_state
        fused = self.fused_step
        capturable = getattr(self, "capturable", False)
        for group in self.param_groups:
            if not (capturable or group.get("capturable")):
                group = _host_hypers(group)
            done = fused(self, group) if fused is not None else None
            for p in group["params"]:
                grad = p.grad
                if p._meta is INFERENCE_META and grad is not None:  # made under inference_mode
                    _inference.check_inplace(p, f"{type(self).__name__}.step")
                if grad is None or (done and id(p) in done):
                    continue
                if grad.__class__ is SparseCooTensor:  # NOTE: an embedding's rows (sparse=True)
                    self._sparse_step(p, grad, group)
                    continue
                st = state.get(p)
                # NOTE: CuPy allocates and runs kernels on the current GPU: make the
                # parameter's current (a shared no-op object on the CPU)
                with backend.device_scope(p._device):
                    if self.master_weights and p._data.dtype.name in HALF:
                        self._master_update(p, grad, group)
                        continue
                    pd, gd = p._data, grad._data
                    if pd.dtype.kind == "c":  # NOTE: as PyTorch, complex values update as
                        pd, gd = _as_real(pd), _as_real(gd)  # pairs of reals
                    if st:
                        update(pd, gd, st, group)
                        continue
                    st = init(pd, group)
                    update(pd, gd, st, group)
                if st:  # NOTE: as PyTorch, no entry for stateless updates (plain SGD)
                    state[p] = st
        return loss

    def _sparse_step(self, p: Tensor, grad: SparseCooTensor, group: dict) -> None:
        if self.master_weights and p._data.dtype.name in HALF:
            raise LayoutError(
                f"{type(self).__name__}: master_weights does not take sparse gradients; keep "
                "the embedding in float32 or make it dense (sparse=False)"
            )
        st = self.state.get(p)
        with backend.device_scope(p._device):
            st = st if st else self.init_state(p._data, group)
            self.sparse_update(p._data, grad, st, group)
        if st:
            self.state[p] = st

    def master_state(self, p: Tensor, group: dict) -> dict[str, Any]:
        """The state of 16-bit ``p`` under ``master_weights``: float32 moments and its
        float32 copy ``master_param``, made on first use from the parameter's values."""
        st = self.state.get(p)
        if not st or "master_param" not in st:
            m = p._data.astype("float32")
            st = self.init_state(m, group)
            st["master_param"] = Tensor._wrap(m, p._device)
            self.state[p] = st
        return st

    def _master_update(self, p: Tensor, grad: Tensor, group: dict) -> None:
        st = self.master_state(p, group)
        m = st["master_param"]._data
        self.update(m, grad._data.astype("float32"), st, group)
        backend.array_module(m).copyto(p._data, m, casting="unsafe")  # rounded to 16 bits

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as PyTorch lays it out.

        ``{"state": {index: {name: value}}, "param_groups": [{..., "params": [index]}]}``,
        where index numbers the parameters across groups in order. The tensors are the
        optimizer's own (not copies); ``mg.save`` writes it to a file.
        """
        for hook in self._hooks("_optimizer_state_dict_pre_hooks").values():
            hook(self)
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            for p in g["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in g["params"]]
            groups.append(packed)
        packed_state = {
            (index[id(k)] if isinstance(k, Tensor) else k): dict(v) for k, v in self.state.items()
        }
        out = {"state": packed_state, "param_groups": groups}
        for hook in self._hooks("_optimizer_state_dict_post_hooks").values():
            out = hook(self, out) or out
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore state saved by ``state_dict`` (of an optimizer built the same way).

        Tensors move to their parameter's device (and floating ones to its dtype); options
        the saved groups lack (a state dict from an older version) take the defaults.
        """
        state_dict = dict(state_dict)
        for hook in self._hooks("_optimizer_load_state_dict_pre_hooks").values():
            state_dict = hook(self, state_dict) or state_dict
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        groups = self.param_groups
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups but the "
                f"optimizer has {len(groups)}; build the optimizer as it was when saved"
            )
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(
                    f"loaded state dict's parameter group {i} has {len(s['params'])} "
                    f"parameters but the optimizer's has {len(g['params'])}"
                )
        id_map = {
            int(k): p
            for s, g in zip(saved_groups, groups)
            for k, p in zip(s["params"], g["params"])
        }
        # NOTE: the options each parameter will step under (capturable: steps on its device)
        group_of = {id(p): {**g, **s} for s, g in zip(saved_groups, groups) for p in g["params"]}
        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            key = int(k) if isinstance(k, str) and k.isdigit() else k
            p = id_map.get(key)
            if p is None:
                state[k] = v
            else:
                keep32 = "master_param" in v  # NOTE: the float32 copy and moments stay float32
                g = group_of.get(id(p), {})
                state[p] = {
                    name: _cast_scalar(p, name, val, g)
                    if name in self.scalar_state
                    else _cast(p, name, val, keep32)
                    for name, val in v.items()
                }
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            if isinstance(s.get("betas"), list):
                s["betas"] = tuple(s["betas"])
            for name, default in self.defaults.items():
                if default is not required:
                    s.setdefault(name, default)
        self.state = state
        self.param_groups = saved_groups
        for hook in self._hooks("_optimizer_load_state_dict_post_hooks").values():
            hook(self)

    # ------------------------------------------------------------------ helpers
    def _tmp(self, a, k: int = 0):
        """Scratch array shaped like ``a`` (k-th of a few), reused across parameters."""
        dev = backend.device_of(a)
        key = (k, a.dtype, dev)
        buf = self._scratch.get(key)
        n = a.size
        if buf is None or buf.size < n:
            with backend.device_scope(dev):
                buf = self._scratch[key] = backend.array_module(a).empty((n,), a.dtype)
        return buf[:n].reshape(a.shape)

    def _grad(self, p, g, maximize: bool, weight_decay: float):
        """``g`` negated when maximizing, plus the L2 term ``weight_decay * p``."""
        if not maximize and weight_decay == 0:
            return g
        xp = backend.array_module(g)
        out = self._tmp(g, 1)
        if weight_decay == 0:
            return xp.negative(g, out=out)
        xp.multiply(p, weight_decay, out=out)
        if maximize:
            out -= g
        else:
            out += g
        return out


def coalesced_rows(grad: SparseCooTensor):
    """A sparse gradient's distinct positions (a tuple of index arrays, one per sparse dim)
    and their summed values, as raw arrays: what sparse updates read and write."""
    c = grad.coalesce()
    idx = c._indices()._data
    return tuple(idx[d] for d in range(idx.shape[0])), c._values()._data


def impl_options(name: str, foreach=None, fused=None, differentiable: bool = False) -> dict:
    """PyTorch's implementation switches, kept in the param groups as PyTorch keeps them.
    ``foreach`` and ``fused`` choose among equal results, so manygrad takes them as given
    and picks its own step (on a GPU, one fused launch where a verified kernel serves);
    ``differentiable=True`` (a step that records a graph) is refused."""
    if differentiable:
        raise NotImplementedError(
            f"{name}: differentiable=True (a step that autograd can differentiate through) is "
            "not supported; use differentiable=False"
        )
    if foreach and fused:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    return {"foreach": foreach, "fused": fused, "differentiable": False}


def _host_hypers(group: dict) -> dict:
    """``group`` with a 0-d tensor ``lr`` (or tensor ``betas``) read as Python floats, as
    the update rules take them; the group itself is returned when it holds none."""
    lr, betas = group.get("lr"), group.get("betas")
    tensor_betas = isinstance(betas, (tuple, list)) and any(isinstance(b, Tensor) for b in betas)
    if not isinstance(lr, Tensor) and not tensor_betas:
        return group
    out = dict(group)
    # NOTE: a host read of each tensor, once per group and step (PyTorch's CPU step does
    # the same); capturable steps read them on the device instead
    if isinstance(lr, Tensor):
        out["lr"] = float(lr)
    if tensor_betas:
        out["betas"] = tuple(float(b) for b in betas)
    return out


def _cast(p: Tensor, name: str, value, keep_dtype: bool = False):
    if not isinstance(value, Tensor):
        return value
    if name == "step":  # NOTE: as PyTorch, a step count keeps its dtype and device
        return Tensor._wrap(value._data.copy(), value._device)
    arr = backend.to_device(value._data, p._device)
    with backend.device_scope(p._device):
        if value.is_floating_point() and arr.dtype != p._data.dtype and not keep_dtype:
            arr = arr.astype(p._data.dtype)
        elif arr is value._data:
            arr = arr.copy()
    return Tensor._wrap(arr, p._device)


def zeros_state(p) -> Tensor:
    """A zero tensor like the raw array ``p``, on its device (for optimizer state)."""
    return Tensor._wrap(backend.array_module(p).zeros_like(p), backend.device_of(p))
