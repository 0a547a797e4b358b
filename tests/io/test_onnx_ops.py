"""ONNX export rules, one line per op: trace a small function, run the file in onnxruntime and
compare with manygrad (batch size free where the case says so)."""

import io

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn.functional as F

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from manygrad.onnx import UnsupportedOpError, export  # noqa: E402


class Fn(mg.nn.Module):
    def __init__(self, fn, *params):
        super().__init__()
        self.fn = fn
        self.ps = mg.nn.ParameterList([mg.nn.Parameter(p) for p in params])

    def forward(self, *xs):
        return self.fn(*xs, *self.ps)


_RNG = np.random.default_rng(0)


def _rand(shape, kind="f", rng=_RNG):
    if kind == "f":
        return rng.normal(size=shape).astype(np.float32)
    if kind == "pos":
        return rng.uniform(0.5, 2.0, size=shape).astype(np.float32)
    if kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    return rng.integers(0, int(kind[1:]), size=shape).astype(np.int64)


def run_case(fn, shapes, kinds=None, params=(), batch=True, opset=17, atol=1e-5):
    """Export ``fn`` on inputs of ``shapes``; compare with ORT at batch sizes 2 and 3."""
    kinds = kinds or ["f"] * len(shapes)
    model = Fn(fn, *[mg.tensor(p) for p in params]).eval()
    xs = [_rand(s, k) for s, k in zip(shapes, kinds)]
    names = [f"x{i}" for i in range(len(xs))]
    dyn = {n: {0: "batch"} for n in names} if batch else None
    buf = io.BytesIO()
    export(model, tuple(mg.tensor(x) for x in xs), buf, input_names=names, dynamic_axes=dyn,
           opset_version=opset)  # fmt: skip
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    for n in (2, 3) if batch else (None,):
        ins = xs if n is None else [_rand((n,) + tuple(s[1:]), k) for s, k in zip(shapes, kinds)]
        got = sess.run(None, dict(zip(names, ins)))
        with mg.no_grad():
            want = model(*[mg.tensor(x) for x in ins])
        want = want if isinstance(want, (tuple, list)) else [want]
        for g, w in zip(got, want):
            w = w.numpy()
            assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype)
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=atol)


W = _rand((5, 4))
CASES = [
    # elementwise
    ("add", lambda x, y: x + y * 2 - 1, [(2, 3), (2, 3)]),
    ("div-pow", lambda x: (x / 3) ** 2 + 2**x, [(2, 4)]),
    ("rdiv-neg", lambda x: -(1 / x), [(2, 4)], ["pos"]),
    ("floor-mod", lambda x: (x // 0.7) + (x % 0.7), [(2, 5)]),
    ("int-floor-mod", lambda x: (x - 4) // 3 + (x - 4) % 3, [(2, 5)], ["i9"]),
    ("unary", lambda x: x.abs().sqrt() + x.exp() + x.sin() * x.cos() + x.tanh(), [(2, 4)]),
    ("logs", lambda x: x.log() + x.log1p() + x.rsqrt() + x.reciprocal(), [(2, 4)], ["pos"]),
    ("expm1-square", lambda x: mg.expm1(x) + mg.square(x), [(2, 4)]),
    (
        "activations",
        lambda x: (
            F.relu(x)
            + F.sigmoid(x)
            + F.silu(x)
            + F.leaky_relu(x, 0.1)
            + F.elu(x, 0.7)
            + F.softplus(x, 2.0, 1.0)
        ),
        [(2, 6)],
    ),  # fmt: skip
    ("gelu", lambda x: F.gelu(x) + F.gelu(x, approximate="tanh"), [(2, 6)]),
    ("gelu-opset20", lambda x: F.gelu(x), [(2, 6)], None, (), True, 20),
    (
        "compare",
        lambda x, y: (
            mg.where(x > y, x, y)
            + (x <= y).float()
            + (x != y).float()
            + (x == x).float()
            + (x >= 0).float()
            + (x < 0.5).float()
        ),
        [(2, 3), (2, 3)],
    ),  # fmt: skip
    ("logical", lambda x, y: ((x > 0) & (y > 0)) | ~(x > 1) ^ (y < 0), [(2, 3), (2, 3)]),
    (
        "bitwise-int",
        lambda x, y: ((x & y) | 6) ^ ~y,
        [(2, 3), (2, 3)],
        ["i9", "i9"],
        (),
        True,
        18,
    ),  # fmt: skip
    (
        "sign-isnan",
        lambda x: mg.sign(x) + x.isnan().float() + mg.isfinite(x).float() + mg.isinf(x).float(),
        [(2, 4)],
    ),  # fmt: skip
    (
        "min-max-clamp",
        lambda x, y: mg.maximum(x, y) - mg.minimum(x, y) + x.clamp(-0.5, 0.5) + x.clamp(min=0),
        [(2, 3), (2, 3)],
    ),  # fmt: skip
    ("cast", lambda x: x.long().float() + x.double().float(), [(2, 3)]),
    ("int-input", lambda x: x * 2 + 1, [(2, 3)], ["i5"]),
    # movement
    (
        "reshape",
        lambda x: x.reshape(x.shape[0], -1).view(x.shape[0], 2, -1).flatten(1),
        [(2, 4, 3)],
    ),
    ("squeeze", lambda x: x.unsqueeze(1).squeeze(1).unsqueeze(-1), [(2, 3)]),
    ("permute", lambda x: x.permute(0, 2, 1).transpose(1, 2).mT, [(2, 3, 4)]),
    ("expand", lambda x: x[:, :1].expand(-1, 4) + x.sum(1, keepdim=True).expand_as(x), [(2, 4)]),
    (
        "cat-stack",
        lambda x, y: mg.cat([x, y, x], 1) + mg.stack([x, y], 1).sum(1).repeat(1, 3),
        [(2, 3), (2, 3)],
    ),  # fmt: skip
    ("split-chunk", lambda x: tuple(x.split(2, dim=1)) + tuple(x.chunk(2, dim=1)), [(2, 5)]),
    (
        "slice",
        lambda x: x[:, 1:3] + x[:, ::2][:, :2] + x[:, -2:] + x[..., 1, None],
        [(2, 5)],
    ),  # fmt: skip
    ("int-index", lambda x: x[:, 0] * x[:, -1] + x[:, None, 2].squeeze(1), [(2, 4, 3)]),
    (
        "index-array",
        lambda x: x[:, mg.tensor([2, 0, 2])] + x.index_select(1, mg.tensor([1, 1, 0])),
        [(2, 4)],
    ),  # fmt: skip
    (
        "index-arrays",
        lambda x, i: x[:, i[0], i[1]] + x[:, mg.tensor([1, 0]), 2],
        [(4, 3, 4, 5), (4, 2)],
        ["f", "i3"],
    ),  # fmt: skip
    (
        "index-arrays-lead",
        lambda x, i: x[i[:, 0], i[:, 1]],
        [(4, 4, 3), (4, 2)],
        ["f", "i4"],
        (),
        False,
    ),  # fmt: skip
    ("gather", lambda x, i: x.gather(1, i), [(2, 4), (2, 3)], ["f", "i4"]),
    (
        "scatter-add",
        lambda x, i, s: x.scatter_add(1, i, s),
        [(2, 4), (2, 3), (2, 3)],
        ["f", "i4", "f"],
    ),  # fmt: skip
    ("embedding-gather", lambda i, w: F.embedding(i, w), [(2, 3)], ["i5"], [W]),
    ("pad", lambda x: F.pad(x, (1, 2)) + 0 * F.pad(x, (1, 2), value=3.0).sum(), [(2, 3, 4)]),
    (
        "pad-modes",
        lambda x: F.pad(x, (1, 1), mode="reflect") + F.pad(x, (1, 1), mode="replicate"),
        [(2, 3, 4)],
    ),  # fmt: skip
    ("pad-circular", lambda x: F.pad(x, (1, 2), mode="circular"), [(2, 3, 4)], None, (), True, 19),
    ("flip-roll", lambda x: x.flip(1) + x.roll(1, 1) + x.roll(-2, (2,)), [(2, 3, 4)]),
    ("tril-triu", lambda x: x.tril() + x.triu(1), [(2, 4, 4)]),
    ("masked-fill", lambda x: x.masked_fill(x > 0, -1.0), [(2, 4)]),
    # reductions
    ("sum-mean", lambda x: x.sum(1) + x.mean(-1).sum(-1, keepdim=True) + x.mean(), [(2, 3, 4)]),
    ("var-std", lambda x: x.var(1) + x.std(1, correction=0), [(2, 5)]),
    (
        "max-min",
        lambda x: x.max(1).values + x.min(1)[0] + x.amax(1) + x.amin(1) + x.max(),
        [(2, 5)],
    ),
    ("argmax", lambda x: x.argmax(1) + x.argmin(1, keepdim=True).squeeze(1), [(2, 5)]),
    ("prod-lse-cumsum", lambda x: x.prod(1) + x.logsumexp(1) + x.cumsum(1).sum(1), [(2, 5)]),
    # linear algebra, layers
    ("matmul", lambda x, y: x @ y.transpose(1, 2) + mg.bmm(x, y.mT), [(2, 3, 4), (2, 3, 4)]),
    ("linear", lambda x, w: F.linear(x, w) + F.linear(x, w).sum(), [(2, 4)], None, [W]),
    ("linear-3d", lambda x, w: F.linear(x, w), [(2, 3, 4)], None, [W]),
    ("softmax", lambda x: F.softmax(x, -1) + F.log_softmax(x, 1).exp(), [(2, 3, 4)]),
    ("layer-norm", lambda x: F.layer_norm(x, (4,)) + F.rms_norm(x, (4,)), [(2, 3, 4)]),
    ("conv", lambda x: F.conv2d(x, mg.ones(4, 3, 3, 3), padding=1, stride=2), [(2, 3, 8, 8)]),
    ("pool", lambda x: F.max_pool2d(x, 3, 2, 1) + F.avg_pool2d(x, 3, 2, 1), [(2, 3, 8, 8)]),
    ("pool-ceil", lambda x: F.max_pool2d(x, 2, ceil_mode=True), [(2, 3, 7, 7)]),
    ("pool-1d", lambda x: F.max_pool1d(x, 2) + F.avg_pool1d(x, 2), [(2, 3, 8)]),
    (
        "adaptive",
        lambda x: F.adaptive_avg_pool2d(x, (2, 4)) + F.adaptive_avg_pool2d(x, 3).sum(),
        [(2, 3, 8, 8)],
    ),  # fmt: skip
    ("adaptive-uneven", lambda x: F.adaptive_avg_pool2d(x, 3), [(2, 3, 7, 5)]),
    (
        "attention",
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
        [(2, 2, 5, 4)] * 3,
    ),  # fmt: skip
    (
        "attention-causal",
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        [(2, 2, 5, 4)] * 3,
    ),  # fmt: skip
    ("hardtanh", lambda x: F.hardtanh(x, -0.5, 1.5), [(2, 3, 4)]),
    ("relu6", lambda x: F.relu6(x * 4), [(2, 3, 4)]),
    ("threshold", lambda x: F.threshold(x, 0.1, -2.0), [(2, 3, 4)]),
    ("hardshrink", lambda x: F.hardshrink(x, 0.7), [(2, 3, 4)]),
    ("softshrink", lambda x: F.softshrink(x, 0.7), [(2, 3, 4)]),
    ("hardsigmoid", lambda x: F.hardsigmoid(x * 4), [(2, 3, 4)]),
    ("hardswish", lambda x: F.hardswish(x * 4), [(2, 3, 4)]),
    (
        "attention-mask",
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        [(2, 2, 5, 4)] * 3 + [(2, 1, 5, 5)],
        ["f", "f", "f", "b"],
    ),  # fmt: skip
    (
        "attention-gqa",
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
        [(2, 4, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4)],
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_rule(case):
    name, fn, shapes, *rest = case
    kinds, params, batch, opset = (rest + [None, (), True, 17][len(rest) :])[:4]
    run_case(fn, shapes, kinds, params, batch, opset)


def test_unsupported_op_is_named():
    with pytest.raises(UnsupportedOpError, match="label_smoothing"):
        export(Fn(lambda x: F.cross_entropy(x, mg.tensor([0, 1]), label_smoothing=0.1)),
               mg.randn(2, 3), io.BytesIO())  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="dropout_p=0.5"):
        export(Fn(lambda q: F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)),
               mg.randn(1, 2, 3, 4), io.BytesIO())  # fmt: skip
    with pytest.raises(UnsupportedOpError, match=r"x\[mask\]"):
        export(Fn(lambda x: x[x > 0].sum()), mg.randn(2, 3), io.BytesIO())
    with pytest.raises(UnsupportedOpError, match="not adjacent"):
        export(Fn(lambda x: x[mg.tensor([0]), :, mg.tensor([1])]), mg.randn(2, 3, 4),
               io.BytesIO())  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="opset_version=18"):
        export(Fn(lambda x: x & 3), mg.tensor([[1, 2]]), io.BytesIO())
    with pytest.raises(UnsupportedOpError, match="divisor_override"):
        export(Fn(lambda x: F.avg_pool2d(x, 2, divisor_override=3)), mg.randn(1, 1, 4, 4),
               io.BytesIO())  # fmt: skip


LOSS_CASES = [
    (
        "cross-entropy",
        lambda x, t: F.cross_entropy(x, t) + F.cross_entropy(x, t, reduction="sum"),
        [(4, 3), (4,)],
        ["f", "i3"],
    ),  # fmt: skip
    (
        "cross-entropy-none-ignore",
        lambda x, t: F.cross_entropy(
            x, t, reduction="none", ignore_index=1, weight=mg.tensor([1.0, 2.0, 0.5])
        ),
        [(4, 3), (4,)],
        ["f", "i3"],
    ),  # fmt: skip
    (
        "nll-spatial",
        lambda x, t: F.nll_loss(F.log_softmax(x, 1), t),
        [(2, 3, 5), (2, 5)],
        ["f", "i3"],
    ),  # fmt: skip
    (
        "soft-ce",
        lambda x, t: F.cross_entropy(x, t.softmax(1), label_smoothing=0.1),
        [(4, 3), (4, 3)],
    ),  # fmt: skip
    (
        "soft-ce-none",
        lambda x, t: F.cross_entropy(x, t.softmax(1), reduction="none"),
        [(4, 3), (4, 3)],
    ),  # fmt: skip
    (
        "regression",
        lambda a, b: (
            F.mse_loss(a, b)
            + F.l1_loss(a, b, reduction="sum")
            + F.smooth_l1_loss(a, b, beta=0.5)
            + F.huber_loss(a, b, delta=0.7)
        ),
        [(2, 5), (2, 5)],
    ),  # fmt: skip
    (
        "bce",
        lambda x, y: (
            F.binary_cross_entropy(x.sigmoid(), y.sigmoid())
            + F.binary_cross_entropy_with_logits(x, y.sigmoid(), pos_weight=mg.tensor([2.0] * 5))
        ),
        [(2, 5), (2, 5)],
    ),  # fmt: skip
    (
        "kl-div",
        lambda x, y: (
            F.kl_div(F.log_softmax(x, 1), y.softmax(1), reduction="batchmean")
            + F.kl_div(F.log_softmax(x, 1), F.log_softmax(y, 1), log_target=True, reduction="sum")
        ),
        [(2, 5), (2, 5)],
        None,
        False,
    ),  # NOTE: batchmean divides by the traced batch size
]


@pytest.mark.parametrize("case", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_rule(case):
    name, fn, shapes, *rest = case
    kinds, batch = (rest + [None, True][len(rest) :])[:2]
    run_case(fn, shapes, kinds, batch=batch)
