"""``torch.utils.flop_counter``: ``FlopCounterMode`` counts the floating-point operations of
the matrix products, convolutions and attention that run inside it, forward and backward,
per module, with PyTorch's formulas (a multiply-add is 2 flops) so that MFU estimates agree.

How ops are seen: matrix products and attention are single autograd Functions (``Matmul``,
``Linear``, ``Attention``), watched through ``autograd._trace`` as selective checkpointing
watches them; convolutions are counted as the op that was called (``ops._whole_op``), since
manygrad runs a transposed or 3-d convolution as other convolutions. A backward is counted
when a counted op's node runs its backward while the mode is open, for the inputs that need
a gradient, as PyTorch's backward kernels compute only those.

NOTE: counts follow PyTorch's CPU kernels: ``scaled_dot_product_attention`` is counted as
its two batched products (``aten.bmm``) and their gradients; ``addmm``/``baddbmm`` called
directly count under ``aten.mm``/``aten.bmm`` (the same number: the added term is free);
matrix-vector products count 0, as PyTorch's table has no ``mv`` or ``dot``.

Example:
    >>> with FlopCounterMode(display=False) as fc:
    ...     model(x).sum().backward()
    >>> fc.get_total_flops()
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections import defaultdict
from typing import Any

from .. import autograd
from ..library import _AtenOp
from ..ops import _whole_op

__all__ = ["FlopCounterMode", "conv_flop_count", "sdpa_flop_count", "get_suffix_str"]


def _prod(xs) -> int:
    return math.prod(int(x) for x in xs)


# ---------------------------------------------------------------------------- formulas


def conv_flop_count(x_shape, w_shape, out_shape, transposed: bool = False) -> int:
    """Flops of a convolution: every output (every input, transposed) position takes
    ``C_in / groups * prod(kernel)`` multiply-adds per output channel."""
    spatial = (x_shape if transposed else out_shape)[2:]
    c0, c1, *kernel = w_shape
    return 2 * int(x_shape[0]) * int(c0) * int(c1) * _prod(spatial) * _prod(kernel)


def _conv_backward_flops(gout, x, w, transposed: bool, need_x: bool, need_w: bool) -> int:
    def swap(s):
        return (s[1], s[0], *s[2:])

    total = conv_flop_count(gout, w, x, not transposed) if need_x else 0
    if need_w:  # NOTE: as PyTorch's, counted with the whole C_in (groups times the forward)
        a, b = (swap(gout), swap(x)) if transposed else (swap(x), swap(gout))
        total += conv_flop_count(a, b, swap(w), False)
    return total


def _broadcast(a, b) -> tuple:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    return tuple(max(x, y) for x, y in zip(a, b))


def sdpa_flop_count(query_shape, key_shape, value_shape) -> int:
    """Flops of attention's two products: q k^T and p v."""
    bh = _prod(query_shape[:-2])
    lq, e = query_shape[-2:]
    lk, ev = key_shape[-2], value_shape[-1]
    return 2 * bh * lq * lk * (e + ev)


def _matmul(a_shape, b_shape, needs) -> tuple[str, int] | None:
    """PyTorch's kernel (mm or bmm) and flops of ``a @ b``; None for the products PyTorch's
    table does not count (matrix-vector and vector-vector)."""
    da, db = len(a_shape), len(b_shape)
    if db == 1 or (da == 1 and db > 2):
        return None
    if da == 1:
        return "mm", 2 * a_shape[0] * b_shape[-1]
    m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
    batch = _prod(_broadcast(a_shape[:-2], b_shape[:-2]))
    if da > 2 and db > 2:
        kind = "bmm"
    elif da == 2 and db > 2:  # NOTE: PyTorch folds b into one mm when a needs a gradient
        kind = "mm" if needs[0] or not needs[1] else "bmm"
    else:
        kind = "mm"
    return kind, 2 * batch * m * k * n


def get_suffix_str(number: int) -> str:
    """The unit (``""``, ``K``, ``M``, ``B``, ``T``) a count of this size is shown in."""
    return ["", "K", "M", "B", "T"][max(0, min(4, (len(str(number)) - 2) // 3))]


def _with_suffix(number: int, suffix: str) -> str:
    return f"{number / 1000 ** ['', 'K', 'M', 'B', 'T'].index(suffix):.3f}{suffix}"


def _percent(num: int, denom: int) -> str:
    return "0%" if denom == 0 else f"{num / denom:.2%}"


_KEYS: dict[str, _AtenOp] = {}


def _key(name: str) -> _AtenOp:
    """The op a count is kept under; it equals ``torch.ops.aten.<name>``."""
    k = _KEYS.get(name)
    if k is None:

        def missing(*args, **kwargs):
            raise NotImplementedError(f"aten.{name} is a flop counter key, not callable here")

        k = _KEYS[name] = _AtenOp(name, missing)
    return k


# ---------------------------------------------------------------------------- the mode


class FlopCounterMode:
    """Count the flops of the ops that run inside ``with FlopCounterMode():``.

    Args:
        mods: ignored (PyTorch's older argument; it warns as PyTorch does).
        depth: how deep a module path the printed table goes (default 2).
        display: print the table when the block ends (default True).
        custom_mapping: ``{torch.ops.aten.mm: fn}`` to count mm, bmm or addmm with
            ``fn(a_shape, b_shape, out_shape=...)`` (addmm: ``fn(bias_shape, a_shape,
            b_shape, out_shape=...)``) instead of PyTorch's formula.

    ``get_total_flops()`` is the sum; ``get_flop_counts()`` is keyed by module path
    (``"Global"``, ``"GPT"``, ``"GPT.transformer.h.0"``) and then by op (``aten.mm``, ...).

    Example:
        >>> with FlopCounterMode(display=False) as fc:
        ...     loss = model(x).sum(); loss.backward()
        >>> mfu = fc.get_total_flops() / step_seconds / peak_flops
    """

    def __init__(self, mods=None, depth: int = 2, display: bool = True,
                 custom_mapping: dict | None = None) -> None:  # fmt: skip
        if mods is not None:
            warnings.warn(
                "mods argument is not needed anymore, you can stop passing it", stacklevel=2
            )
        self.depth, self.display = depth, display
        self.flop_counts: defaultdict = defaultdict(lambda: defaultdict(int))
        self.custom_mapping = dict(custom_mapping or {})
        counted = {_key(n) for n in ("mm", "bmm", "addmm")}
        other = [k for k in self.custom_mapping if k not in counted]
        if other:
            warnings.warn(
                f"FlopCounterMode: custom_mapping for {other} is not used; manygrad takes "
                "formulas for aten.mm, aten.bmm and aten.addmm only",
                stacklevel=2,
            )
        self._open = False
        self._inside_whole = 0
        self._parents: list[str] = []
        self._names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._seen: weakref.WeakSet = weakref.WeakSet()
        self._handles: list = []
        self._watch = None

    # ---------------------------------------------------------------- results
    def get_total_flops(self) -> int:
        return sum(self.flop_counts["Global"].values())

    def get_flop_counts(self) -> dict[str, dict[Any, int]]:
        """``{module path: {op: flops}}``, "Global" holding every count."""
        return {k: dict(v) for k, v in self.flop_counts.items()}

    def get_table(self, depth: int | None = None) -> str:
        """The counts per module, down to ``depth`` levels, as PyTorch prints them."""
        depth = self.depth if depth is None else depth
        depth = 999999 if depth is None else depth
        total = self.get_total_flops()
        suffix = get_suffix_str(total)
        subsumed = False

        def rows_of(name: str, indent: int) -> list[list[str]]:
            nonlocal subsumed
            own = sum(self.flop_counts[name].values())
            subsumed |= own >= total
            pad = " " * indent
            rows = [[pad + name, _with_suffix(own, suffix), _percent(own, total)]]
            for op, v in self.flop_counts[name].items():
                rows.append([f"{pad} - {op}", _with_suffix(v, suffix), _percent(v, total)])
            return rows

        rows = []
        for name in sorted(self.flop_counts):
            if name != "Global" and name.count(".") + 1 <= depth:
                rows += rows_of(name, name.count("."))
        if "Global" in self.flop_counts and not subsumed:
            rows = rows_of("Global", 0) + [[" " + r[0], *r[1:]] for r in rows]
        if not rows:
            rows = [["Global", "0", "0%"]]
        header = ["Module", "FLOP", "% Total"]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

        def line(r):
            return f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}"

        sep = "  ".join("-" * w for w in widths)
        return "\n".join([line(header), sep, *(line(r) for r in rows)])

    # ---------------------------------------------------------------- the block
    def __enter__(self):
        from ..nn.module import register_module_forward_hook, register_module_forward_pre_hook
        from ._checkpoint_sac import OpWatch

        self.flop_counts.clear()
        self._parents, self._inside_whole, self._open = [], 0, True
        self._handles = [
            register_module_forward_pre_hook(self._module_enter),
            register_module_forward_hook(self._module_exit, always_call=True),
        ]
        self._watch = OpWatch(self._on_node)
        self._watch.__enter__()
        _whole_op.watchers.append(self)
        return self

    def __exit__(self, *exc) -> bool:
        _whole_op.watchers.remove(self)
        self._watch.__exit__(*exc)
        for h in self._handles:
            h.remove()
        self._handles, self._watch, self._open = [], None, False
        if self.display:
            print(self.get_table(self.depth))
        return False

    # ---------------------------------------------------------------- modules
    def _name(self, mod) -> str:
        name = self._names.get(mod)
        if name is None:
            name = self._names[mod] = type(mod).__name__
        if mod not in self._seen:  # NOTE: children are named after their parent, once
            self._seen.add(mod)
            for child_name, child in mod.named_children():
                self._names[child] = f"{name}.{child_name}"
                # NOTE: the whole subtree, as PyTorch's ModuleTracker: a container that is
                # never called (ModuleList) must still name its children "GPT.h.0"
                self._name(child)
        return name

    def _module_enter(self, mod, args) -> None:
        self._parents.append(self._name(mod))

    def _module_exit(self, mod, args, out) -> None:
        name = self._name(mod)
        if name in self._parents:
            del self._parents[len(self._parents) - 1 - self._parents[::-1].index(name)]

    # ---------------------------------------------------------------- counting
    def _add(self, parents: tuple, op: str, flops: int) -> None:
        key = _key(op)
        for p in parents:
            self.flop_counts[p][key] += flops

    def _now(self) -> tuple:
        return ("Global", *dict.fromkeys(self._parents))

    def _custom(self, op: str, shapes: tuple, out_shape, default: int) -> int:
        fn = self.custom_mapping.get(_key(op))
        return default if fn is None else int(fn(*shapes, out_shape=out_shape))

    def _later(self, node, parents: tuple, op: str, flops: int) -> None:
        """Count ``flops`` under ``op`` when ``node``'s backward runs inside this mode."""
        from ..autograd.graph import add_hook

        if not flops or node is None:
            return
        me = weakref.ref(self)

        def hook(grad_inputs, grad_outputs):
            mode = me()
            if mode is not None and mode._open:
                mode._add(parents, op, flops)

        add_hook(node, "post", hook)

    def _on_node(self, ctx, args, kwargs, out) -> None:
        if self._inside_whole:
            return
        name = type(ctx).__name__
        if name.startswith("MatmulBackward"):
            self._matmul(ctx, args, out)
        elif name.startswith("LinearBackward"):
            self._linear(ctx, args, out)
        elif name.startswith("AttentionBackward"):
            self._attention(ctx, args, out)

    def _matmul(self, ctx, args, out) -> None:
        a, b = args[0].shape, args[1].shape
        needs = ctx.needs_input_grad
        got = _matmul(a, b, needs)
        if got is None:
            return
        op, flops = got
        flops = self._custom(op, (a, b), out.shape, flops)
        parents = self._now()
        self._add(parents, op, flops)
        if out.requires_grad:
            self._later(out.grad_fn, parents, "mm" if op == "mm" else "bmm",
                        flops * (bool(needs[0]) + bool(needs[1])))  # fmt: skip

    def _linear(self, ctx, args, out) -> None:
        x, w, b = args[0].shape, args[1].shape, args[2]
        op = "mm" if b is None else "addmm"
        flops = 2 * _prod(x[:-1]) * w[0] * w[1]
        a2, w2 = (_prod(x[:-1]), x[-1]), (w[1], w[0])  # NOTE: the 2-d product PyTorch runs
        shapes = (a2, w2) if b is None else (tuple(b.shape), a2, w2)
        flops = self._custom(op, shapes, out.shape, flops)
        parents = self._now()
        self._add(parents, op, flops)
        needs = ctx.needs_input_grad
        if out.requires_grad:
            self._later(out.grad_fn, parents, "mm", flops * (bool(needs[0]) + bool(needs[1])))

    def _attention(self, ctx, args, out) -> None:
        q, k, v = args[0].shape, args[1].shape, args[2].shape
        groups = args[6] if len(args) > 6 and isinstance(args[6], int) else 1
        k = (*k[:-3], k[-3] * groups, *k[-2:]) if len(k) >= 3 else k
        batch = _broadcast(q[:-2], k[:-2])
        bh, lq, e, lk, ev = _prod(batch), q[-2], q[-1], k[-2], v[-1]
        parents = self._now()
        self._add(parents, "bmm", sdpa_flop_count((*batch, lq, e), (*batch, lk, e), v))
        if not out.requires_grad:
            return
        nq, nk, nv = (bool(n) for n in ctx.needs_input_grad[:3])
        # NOTE: the gradients of p v (of p when q or k needs one, of v) and of q k^T
        flops = 2 * bh * lq * lk * (ev * (nv + (nq or nk)) + e * (nq + nk))
        self._later(out.grad_fn, parents, "bmm", flops)

    # ---------------------------------------------------------------- convolutions
    def enter(self) -> None:
        self._inside_whole += 1

    def exit(self) -> None:
        self._inside_whole -= 1

    def whole_op(self, name: str, args, kwargs, out) -> None:
        if self._inside_whole:
            return  # NOTE: conv_transpose3d runs conv_transpose2d: counted once, outside
        x = kwargs.get("input", args[0] if args else None)
        w = kwargs.get("weight", args[1] if len(args) > 1 else None)
        xs, ws, ys = tuple(x.shape), tuple(w.shape), tuple(out.shape)
        if len(xs) < len(ws):  # NOTE: an unbatched input counts as a batch of one
            xs, ys = (1, *xs), (1, *ys)
        transposed = name == "conv_transpose"
        parents = self._now()
        self._add(parents, "convolution", conv_flop_count(xs, ws, ys, transposed))
        if out.requires_grad and autograd.is_grad_enabled():
            need_x, need_w = bool(x.requires_grad), bool(w.requires_grad)
            flops = _conv_backward_flops(ys, xs, ws, transposed, need_x, need_w)
            self._later(out.grad_fn, parents, "convolution_backward", flops)
