"""``autograd.graph.saved_tensors_hooks`` and ``save_on_cpu``: what an op keeps for its
backward passes through ``pack_hook`` when the op runs and ``unpack_hook`` when its backward
needs it (offloading, compression, inspection).

manygrad ops keep their arrays as attributes of their graph node; while hooks are set,
every array (or tensor) a node keeps, alone or in a tuple or list, is replaced by what
``pack_hook`` returns, and restored from ``unpack_hook`` just before the node's backward.
Custom Functions' ``ctx.save_for_backward`` tensors go through the same hooks.
"""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor

_stack: list = []  # the (pack, unpack) pairs in force, innermost last


def current():
    """The innermost ``(pack, unpack)``, ``("disabled", message)``, or None."""
    return _stack[-1] if _stack else None


def _wrap(arr) -> Tensor:
    return Tensor._wrap(arr, backend.device_of(arr))


def _pack_value(v, pack):
    """``(kind, payload)`` for a kept value, or None to keep it as it is."""
    if isinstance(v, Tensor):
        return ("tensor", pack(v))
    if backend.is_array(v) and getattr(v, "ndim", 0) > 0:
        return ("array", pack(_wrap(v)))
    if isinstance(v, (tuple, list)) and any(
        isinstance(x, Tensor) or (backend.is_array(x) and getattr(x, "ndim", 0) > 0) for x in v
    ):
        items = [_pack_value(x, pack) or ("raw", x) for x in v]
        return ("seq", (type(v), items))
    return None


def _unpack_value(kind, payload, unpack):
    if kind == "raw":
        return payload
    if kind == "tensor":
        return _tensor(unpack(payload))
    if kind == "array":
        return _tensor(unpack(payload))._data
    seq_type, items = payload
    vals = [_unpack_value(k, p, unpack) for k, p in items]
    return seq_type(vals)


def _tensor(t):
    if not isinstance(t, Tensor):
        raise TypeError(
            f"saved_tensors_hooks: unpack_hook must return a Tensor, got {type(t).__name__}"
        )
    return t


def _start(a):
    """``(kind, address)`` of a C-contiguous array's first element, or None."""
    a = getattr(a, "_a", a)  # NOTE: a fakegpu array's NumPy array
    if not getattr(getattr(a, "flags", None), "c_contiguous", False) or a.size == 0:
        return None
    ptr = getattr(getattr(a, "data", None), "ptr", None)  # CuPy
    if ptr is None:
        ptr = a.__array_interface__["data"][0]
    return type(a), ptr


def _alias_of(v, primaries: list):
    """The key of a packed array that ``v`` is the same memory as (itself, or a reshape of
    it: the 2-d form an op makes of its input), or None."""
    if not backend.is_array(v) or getattr(v, "ndim", 0) == 0:
        return None
    start = None
    for k, a in primaries:
        if a is v:
            return k
        if a.size == v.size and a.dtype == v.dtype:
            start = start or _start(v)
            if start is not None and start == _start(a):
                return k
    return None


def pack_node(node, hooks) -> None:
    """Replace what ``node`` keeps by ``pack_hook``'s results. An array the node keeps twice
    (itself, or reshaped) is packed once, as PyTorch's nodes save a tensor once."""
    pack, unpack = hooks
    d = node.__dict__
    packed, ids, primaries = {}, set(), []
    for k, v in list(d.items()):
        if k in ("_h", "_meta") or k.startswith("__"):
            continue
        same = _alias_of(v, primaries)
        if same is not None:
            packed[k] = ("alias", (same, v.shape))
            ids.add(id(v))
            d[k] = None
            continue
        p = _pack_value(v, pack)
        if p is not None and p[0] == "array":
            primaries.append((k, v))
        if p is not None:
            packed[k] = p
            for x in v if isinstance(v, (tuple, list)) else (v,):
                ids.add(id(x._data if isinstance(x, Tensor) else x))
            d[k] = None
    if packed:
        d["_packed"] = (packed, unpack)
        # NOTE: which arrays the node kept, for the in-place version check after unpacking
        d["_packed_ids"] = ids


def unpack_node(node) -> None:
    """Restore what ``pack_node`` replaced (once; the node keeps the restored values)."""
    d = node.__dict__
    packed, unpack = d.pop("_packed")
    for k, (kind, payload) in packed.items():
        if kind != "alias":
            d[k] = _unpack_value(kind, payload, unpack)
    for k, (kind, payload) in packed.items():
        if kind == "alias":
            key, shape = payload
            d[k] = d[key].reshape(shape)


class saved_tensors_hooks:  # noqa: N801 - PyTorch's name
    """Inside this block, ops pass what they keep for backward through
    ``pack_hook(tensor) -> anything`` and get it back from ``unpack_hook(that) -> tensor``.

    Example:
        >>> with mg.autograd.graph.saved_tensors_hooks(lambda t: t.cpu(), lambda t: t.cuda()):
        ...     loss = model(x).sum()
    """

    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self):
        if _stack and _stack[-1][0] == "disabled":
            raise RuntimeError(_stack[-1][1])
        _stack.append((self.pack_hook, self.unpack_hook))
        _sync()
        return self

    def __exit__(self, *exc):
        _stack.pop()
        _sync()
        return False


class save_on_cpu(saved_tensors_hooks):  # noqa: N801 - PyTorch's name
    """Keep what ops save for backward in host memory (GPU memory for activations is freed
    until backward copies them back). ``pin_memory`` is accepted; on the CPU this changes
    nothing."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda"):
        def pack(t):
            return (t.device, t.detach().cpu())

        def unpack(packed):
            dev, t = packed
            return t.to(dev)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:  # noqa: N801 - PyTorch's name
    """A block in which setting saved-tensor hooks raises ``RuntimeError(error_message)``."""

    def __init__(self, error_message: str):
        self.error_message = error_message

    def __enter__(self):
        _stack.append(("disabled", self.error_message))
        _sync()
        return self

    def __exit__(self, *exc):
        _stack.pop()
        _sync()
        return False


def _sync() -> None:
    """Publish the innermost hooks to ``Function.apply`` (None inside a disabling block)."""
    from .. import autograd

    top = current()
    autograd._saved_tensor_hooks = None if top is None or top[0] == "disabled" else top
