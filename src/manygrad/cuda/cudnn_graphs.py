"""cuDNN graphs through nvidia-cudnn-frontend's low-level ``pygraph`` API, on CuPy pointers.

UNVERIFIED: nothing here has executed on a GPU; the fast paths ``cudnn.conv2d`` and
``cudnn.sdpa`` are off by default and im2col / matmul-softmax stay the references. Each
graph is first a plain description (:class:`GraphDesc`: tensors with dims, strides and
dtypes, and the ops between them) that tests check without cuDNN; :func:`construct` turns
one into a ``cudnn.pygraph`` (which works without a GPU when the frontend is installed);
:func:`execute` builds the plans (cached per description) and runs them (GPU only).

Install: ``pip install 'manygrad[cuda12]'`` (or ``[cuda13]``; cuDNN itself is ~1 GB).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import backend
from ..kernels.launch import UnsupportedCallError

INSTALL = "pip install 'manygrad[cuda12]' (or [cuda13]: nvidia-cudnn-frontend and cuDNN)"
IO_DTYPES = ("float32", "float16", "bfloat16")
_CUDNN_TYPE = {"float32": "FLOAT", "float16": "HALF", "bfloat16": "BFLOAT16", "int32": "INT32"}


@dataclass(frozen=True)
class TensorDesc:
    name: str
    dims: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: str
    output: bool = False


@dataclass(frozen=True)
class OpDesc:
    op: str  # the pygraph method: conv_fprop, bias, relu, sdpa, ...
    inputs: tuple[tuple[str, str], ...]  # (keyword, tensor name)
    outputs: tuple[str, ...]  # tensor names, in the method's result order
    params: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class GraphDesc:
    """A cuDNN graph as data; hashable, so it is its own cache key."""

    kind: str
    io_dtype: str
    tensors: tuple[TensorDesc, ...]
    ops: tuple[OpDesc, ...]
    notes: tuple[str, ...] = field(default=())

    def tensor(self, name: str) -> TensorDesc:
        return next(t for t in self.tensors if t.name == name)


def contiguous_strides(dims) -> tuple[int, ...]:
    out, s = [], 1
    for d in reversed(dims):
        out.append(s)
        s *= d
    return tuple(reversed(out))


def _pair(v, name):
    t = (v, v) if isinstance(v, int) else tuple(v)
    if len(t) != 2 or any(int(a) < 0 for a in t):
        raise ValueError(f"conv2d: {name} must be an int or a pair of ints >= 0, got {v!r}")
    return t


def _io(dtype) -> str:
    dtype = str(dtype)
    if dtype not in IO_DTYPES:
        raise UnsupportedCallError(f"cuDNN path takes {', '.join(IO_DTYPES)}, not {dtype}")
    return dtype


def conv_out_hw(h, w, kh, kw, stride, padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1


def conv2d_fprop(x_shape, w_shape, dtype, stride=1, padding=0, dilation=1, groups=1,
                 bias=False, relu=False) -> GraphDesc:  # fmt: skip
    """``y = relu(conv2d(x, w) + b)`` on NCHW arrays (C-contiguous, as manygrad keeps them).

    Args:
        x_shape: (N, C, H, W); w_shape: (K, C // groups, R, S).
        dtype: io dtype; compute is float32.
        stride, padding, dilation: ints or pairs; groups: as ``F.conv2d``.
        bias, relu: fuse a per-channel bias add and a ReLU after the convolution.

    Example: ``conv2d_fprop((8, 64, 32, 32), (128, 64, 3, 3), "bfloat16", padding=1)``.
    """
    dt = _io(dtype)
    n, c, h, w = x_shape
    k, cg, r, s = w_shape
    if groups < 1 or c % groups or k % groups or cg != c // groups:
        raise ValueError(f"conv2d: weight {tuple(w_shape)} does not fit input {tuple(x_shape)} "
                         f"with groups={groups}")  # fmt: skip
    st, pd, dl = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    p, q = conv_out_hw(h, w, r, s, st, pd, dl)
    if p <= 0 or q <= 0:
        raise ValueError(f"conv2d: output would be empty ({p}x{q}) for input {tuple(x_shape)}")
    y = (n, k, p, q)
    tensors = [TensorDesc("x", tuple(x_shape), contiguous_strides(x_shape), dt),
               TensorDesc("w", tuple(w_shape), contiguous_strides(w_shape), dt)]  # fmt: skip
    conv_params = (("padding", pd), ("stride", st), ("dilation", dl))
    last = "conv_y"
    ops = [OpDesc("conv_fprop", (("image", "x"), ("weight", "w")), (last,), conv_params)]
    if bias:
        tensors.append(TensorDesc("b", (1, k, 1, 1), (k, 1, 1, 1), dt))
        ops.append(OpDesc("bias", (("input", last), ("bias", "b")), ("bias_y",)))
        last = "bias_y"
    if relu:
        ops.append(OpDesc("relu", (("input", last),), ("relu_y",)))
        last = "relu_y"
    ops[-1] = OpDesc(ops[-1].op, ops[-1].inputs, ("y",), ops[-1].params)
    tensors.append(TensorDesc("y", y, contiguous_strides(y), dt, output=True))
    return GraphDesc("conv2d_fprop", dt, tuple(tensors), tuple(ops))


def conv2d_dgrad(dy_shape, w_shape, x_shape, dtype, stride=1, padding=0, dilation=1):
    """``dx`` of a convolution: ``conv_dgrad(loss=dy, filter=w)`` with dx's dims pushed."""
    dt = _io(dtype)
    st, pd, dl = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    params = (("padding", pd), ("stride", st), ("dilation", dl))
    return GraphDesc("conv2d_dgrad", dt, (
        TensorDesc("dy", tuple(dy_shape), contiguous_strides(dy_shape), dt),
        TensorDesc("w", tuple(w_shape), contiguous_strides(w_shape), dt),
        TensorDesc("dx", tuple(x_shape), contiguous_strides(x_shape), dt, output=True),
    ), (OpDesc("conv_dgrad", (("loss", "dy"), ("filter", "w")), ("dx",), params),))  # fmt: skip


def conv2d_wgrad(x_shape, dy_shape, w_shape, dtype, stride=1, padding=0, dilation=1):
    """``dw`` of a convolution: ``conv_wgrad(image=x, loss=dy)`` with dw's dims pushed."""
    dt = _io(dtype)
    st, pd, dl = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    params = (("padding", pd), ("stride", st), ("dilation", dl))
    return GraphDesc("conv2d_wgrad", dt, (
        TensorDesc("x", tuple(x_shape), contiguous_strides(x_shape), dt),
        TensorDesc("dy", tuple(dy_shape), contiguous_strides(dy_shape), dt),
        TensorDesc("dw", tuple(w_shape), contiguous_strides(w_shape), dt, output=True),
    ), (OpDesc("conv_wgrad", (("image", "x"), ("loss", "dy")), ("dw",), params),))  # fmt: skip


def _qkv_strides(b, h, s, d, layout):
    """Strides of a logical (B, H, S, D) tensor stored as BSHD (the GPT's packed heads)
    or BHSD (contiguous)."""
    if layout == "BSHD":
        return (s * h * d, d, h * d, 1)
    if layout == "BHSD":
        return (h * s * d, s * d, d, 1)
    raise ValueError(f"sdpa: layout must be 'BSHD' or 'BHSD', got {layout!r}")


def _sdpa_check(dtype, d, backward):
    dt = _io(dtype)
    if dt == "float32":
        raise UnsupportedCallError("cuDNN flash attention takes float16/bfloat16, not float32")
    if d > 256 or d % 8:
        raise UnsupportedCallError(f"head dim {d}: cuDNN SDPA needs a multiple of 8, <= 256")
    return dt


def sdpa_forward(b, h, s_q, s_kv, d, dtype, scale=None, causal=False, padding=False,
                 layout="BSHD", training=True) -> GraphDesc:  # fmt: skip
    """Flash attention forward: O = softmax(scale Q Kᵀ (+ masks)) V, and the float32 softmax
    statistics (B, H, S_q, 1) that the backward needs when ``training``.

    ``padding`` adds per-batch ``seq_len_q``/``seq_len_kv`` (int32, (B, 1, 1, 1)) tensors.
    """
    dt = _sdpa_check(dtype, d, False)
    scale = d**-0.5 if scale is None else float(scale)
    q_dims, kv_dims = (b, h, s_q, d), (b, h, s_kv, d)
    t = [TensorDesc("q", q_dims, _qkv_strides(b, h, s_q, d, layout), dt),
         TensorDesc("k", kv_dims, _qkv_strides(b, h, s_kv, d, layout), dt),
         TensorDesc("v", kv_dims, _qkv_strides(b, h, s_kv, d, layout), dt)]  # fmt: skip
    ins = [("q", "q"), ("k", "k"), ("v", "v")]
    params = [("attn_scale", scale), ("generate_stats", training),
              ("use_causal_mask", causal), ("use_padding_mask", padding)]  # fmt: skip
    if padding:
        for n in ("seq_len_q", "seq_len_kv"):
            t.append(TensorDesc(n, (b, 1, 1, 1), (1, 1, 1, 1), "int32"))
            ins.append((n, n))
    t.append(TensorDesc("o", q_dims, _qkv_strides(b, h, s_q, d, layout), dt, output=True))
    outs = ("o", "stats") if training else ("o",)
    if training:
        t.append(TensorDesc("stats", (b, h, s_q, 1), (h * s_q, s_q, 1, 1), "float32", output=True))
    return GraphDesc(
        "sdpa_forward", dt, tuple(t), (OpDesc("sdpa", tuple(ins), outs, tuple(params)),)
    )


def sdpa_backward(b, h, s_q, s_kv, d, dtype, scale=None, causal=False, padding=False,
                  layout="BSHD") -> GraphDesc:  # fmt: skip
    """Flash attention backward: dQ, dK, dV from Q, K, V, O, dO and the forward's stats."""
    fwd = sdpa_forward(b, h, s_q, s_kv, d, dtype, scale, causal, padding, layout, True)
    dt = fwd.io_dtype
    by = {t.name: t for t in fwd.tensors}
    t = [by["q"], by["k"], by["v"], TensorDesc("o", by["o"].dims, by["o"].strides, dt),
         TensorDesc("dO", by["o"].dims, by["o"].strides, dt),
         TensorDesc("stats", by["stats"].dims, by["stats"].strides, "float32")]  # fmt: skip
    ins = [("q", "q"), ("k", "k"), ("v", "v"), ("o", "o"), ("dO", "dO"), ("stats", "stats")]
    if padding:
        t += [by["seq_len_q"], by["seq_len_kv"]]
        ins += [("seq_len_q", "seq_len_q"), ("seq_len_kv", "seq_len_kv")]
    for g, src in (("dQ", "q"), ("dK", "k"), ("dV", "v")):
        t.append(TensorDesc(g, by[src].dims, by[src].strides, dt, output=True))
    params = tuple(p for p in fwd.ops[0].params if p[0] != "generate_stats")
    op = OpDesc("sdpa_backward", tuple(ins), ("dQ", "dK", "dV"), params)
    return GraphDesc("sdpa_backward", dt, tuple(t), (op,))


# ---------------------------------------------------------------------------- frontend


def cudnn_missing() -> str:
    """ "" when the cuDNN frontend imports, else why not and what to install."""
    try:
        import cudnn  # noqa: F401
    except Exception as e:
        return f"nvidia-cudnn-frontend is not usable ({type(e).__name__}: {e}); {INSTALL}"
    return ""


def construct(desc: GraphDesc, handle=None):
    """A ``cudnn.pygraph`` for ``desc`` and its tensors by name (no GPU needed)."""
    import cudnn

    def dtype(name):
        return getattr(cudnn.data_type, _CUDNN_TYPE[name])

    kw = {} if handle is None else {"handle": handle}
    g = cudnn.pygraph(io_data_type=dtype(desc.io_dtype), intermediate_data_type=dtype("float32"),
                      compute_data_type=dtype("float32"), **kw)  # fmt: skip
    tensors = {}
    for t in desc.tensors:
        if not t.output:
            tensors[t.name] = g.tensor(name=t.name, dim=list(t.dims), stride=list(t.strides),
                                       data_type=dtype(t.dtype))  # fmt: skip
    outputs = {t.name: t for t in desc.tensors if t.output}
    for op in desc.ops:
        args = {k: tensors[v] for k, v in op.inputs}
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in op.params}
        res = getattr(g, op.op)(**args, **params, name=op.outputs[0])
        res = res if isinstance(res, list | tuple) else [res]
        for name, r in zip(op.outputs, res):
            tensors[name] = r
            if name in outputs:
                o = outputs[name]
                r.set_output(True).set_dim(list(o.dims)).set_stride(list(o.strides))
                r.set_data_type(dtype(o.dtype))
            else:
                r.set_data_type(dtype("float32"))
    return g, tensors


_GRAPHS: dict = {}


def execute(desc: GraphDesc, arrays: dict):
    """Build (once per ``desc``) and run the graph on CuPy arrays named as ``desc``'s
    tensors (outputs included). UNVERIFIED: never run on a GPU."""
    if any(backend.device_of(a).type != "cuda" for a in arrays.values()):
        raise UnsupportedCallError("cuDNN graphs run on CuPy arrays on a GPU")
    cp = backend.cuda_module()
    why = cudnn_missing()
    if why:
        raise UnsupportedCallError(why)
    import cudnn

    stream = cp.cuda.get_current_stream().ptr
    key = (desc, stream)
    if key not in _GRAPHS:
        handle = cudnn.create_handle()
        cudnn.set_stream(handle=handle, stream=stream)
        g, tensors = construct(desc, handle)
        g.build([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        _GRAPHS[key] = (g, tensors, handle)
    g, tensors, handle = _GRAPHS[key]
    ws = cp.empty(max(1, g.get_workspace_size()), dtype=cp.uint8)
    g.execute({tensors[n]: a.data.ptr for n, a in arrays.items()}, ws.data.ptr, handle=handle)


# ---------------------------------------------------------------------------- fast paths


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, relu=False):
    """``relu?(conv2d(x, w) + b)`` through a cuDNN graph (fast path ``cudnn.conv2d``)."""
    desc = conv2d_fprop(x.shape, w.shape, x.dtype, stride, padding, dilation, groups,
                        bias=b is not None, relu=relu)  # fmt: skip
    y = backend.array_module(x).empty(desc.tensor("y").dims, x.dtype)
    arrays = {"x": x, "w": w, "y": y}
    if b is not None:
        arrays["b"] = b.reshape(1, -1, 1, 1)
    execute(desc, arrays)
    return y


def conv2d_reference(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, relu=False):
    """The reference: manygrad's own conv2d (im2col + GEMM on a GPU), then the ReLU."""
    from .. import autograd
    from ..kernels import fastpath
    from ..nn import functional as F
    from ..tensor import Tensor

    dev = backend.device_of(x)
    wrap = lambda a: None if a is None else Tensor._wrap(a, dev)  # noqa: E731
    with autograd.no_grad(), fastpath.plain():
        y = F.conv2d(wrap(x), wrap(w), wrap(b), stride, padding, dilation, groups)
        return (F.relu(y) if relu else y)._data


def sdpa(q, k, v, scale=None, causal=False):
    """Attention on (B, H, S, D) contiguous arrays through cuDNN (fast path ``cudnn.sdpa``)."""
    b, h, s_q, d = q.shape
    desc = sdpa_forward(b, h, s_q, k.shape[2], d, q.dtype, scale, causal, layout="BHSD",
                        training=False)  # fmt: skip
    o = backend.array_module(q).empty_like(q)
    execute(desc, {"q": q, "k": k, "v": v, "o": o})
    return o


def scores(q, k, scale=None, causal=False, end_aligned=False):
    """float32 ``scale Q Kᵀ`` (scale default ``1/sqrt(D)``), masked after the diagonal when
    ``causal``: top-left aligned, as PyTorch's, or aligned to the end. Returns
    ``(scores, scale)``."""
    xp = backend.array_module(q)
    f32 = xp.float32
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = backend.matmul(q.astype(f32), xp.swapaxes(k.astype(f32), -1, -2)) * f32(scale)
    if causal:
        sq, sk = s.shape[-2], s.shape[-1]
        shift = sk - sq if end_aligned else 0
        s = xp.where(xp.arange(sk)[None, :] > xp.arange(sq)[:, None] + shift, -xp.inf, s)
    return s, scale


def sdpa_reference(q, k, v, scale=None, causal=False):
    """The reference: ``softmax(scale Q Kᵀ) V`` in float32 (masked after the diagonal,
    aligned to the end, when ``causal``)."""
    xp = backend.array_module(q)
    f32 = xp.float32
    s, _ = scores(q, k, scale, causal, end_aligned=True)
    s = xp.exp(s - s.max(axis=-1, keepdims=True))
    s /= s.sum(axis=-1, keepdims=True)
    return backend.matmul(s, v.astype(f32)).astype(q.dtype, copy=False)
