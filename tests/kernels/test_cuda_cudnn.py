"""cuDNN graphs (manygrad.cuda.cudnn_graphs) without a GPU: the descriptions' shapes,
strides and dtypes, the references, and, where the frontend is installed, that cuDNN's
pygraph accepts each description."""

import numpy as np
import pytest
import torch
import torch.nn.functional as tF

from manygrad import backend
from manygrad.cuda import cudnn_graphs as cg
from manygrad.kernels import fastpath
from manygrad.kernels.launch import UnsupportedCallError

HAVE_CUDNN = cg.cudnn_missing() == ""
needs_cudnn = pytest.mark.skipif(not HAVE_CUDNN, reason="nvidia-cudnn-frontend not installed")


def _descs():
    return [
        cg.conv2d_fprop((8, 64, 32, 32), (128, 64, 3, 3), "bfloat16", padding=1, bias=True, relu=True),
        cg.conv2d_fprop((2, 4, 9, 9), (6, 2, 3, 3), "float32", stride=2, groups=2),
        cg.conv2d_dgrad((8, 128, 16, 16), (128, 64, 3, 3), (8, 64, 32, 32), "float16", 2, 1),
        cg.conv2d_wgrad((8, 64, 32, 32), (8, 128, 32, 32), (128, 64, 3, 3), "bfloat16", padding=1),
        cg.sdpa_forward(4, 12, 128, 128, 64, "bfloat16", causal=True),
        cg.sdpa_forward(4, 12, 128, 256, 64, "float16", padding=True, layout="BHSD", training=False),
        cg.sdpa_backward(4, 12, 128, 128, 64, "bfloat16", causal=True, padding=True),
        # what cuda.cudnn_train runs: BHSD (contiguous heads), with stats, and its backward
        cg.sdpa_forward(2, 4, 64, 64, 32, "bfloat16", 0.2, causal=True, layout="BHSD"),
        cg.sdpa_backward(2, 4, 64, 64, 32, "float16", 0.2, causal=False, layout="BHSD"),
    ]  # fmt: skip


def test_conv_descriptions_have_the_output_shape_of_torch():
    for kw in [dict(), dict(stride=2, padding=1), dict(padding=(2, 1), dilation=2), dict(groups=2)]:
        x, w = torch.zeros(2, 4, 11, 9), torch.zeros(6, 4 // kw.get("groups", 1), 3, 3)
        d = cg.conv2d_fprop(x.shape, w.shape, "float32", **kw)
        assert d.tensor("y").dims == tuple(tF.conv2d(x, w, **kw).shape)
        assert d.tensor("y").strides == cg.contiguous_strides(d.tensor("y").dims)
    d = cg.conv2d_fprop((1, 3, 8, 8), (5, 3, 3, 3), "bfloat16", bias=True, relu=True)
    assert [o.op for o in d.ops] == ["conv_fprop", "bias", "relu"]
    assert d.ops[-1].outputs == ("y",) and d.tensor("b").dims == (1, 5, 1, 1)
    assert {t.dtype for t in d.tensors} == {"bfloat16"}


def test_conv_refusals():
    with pytest.raises(UnsupportedCallError, match="not float64"):
        cg.conv2d_fprop((1, 3, 8, 8), (5, 3, 3, 3), "float64")
    with pytest.raises(ValueError, match="groups=2"):
        cg.conv2d_fprop((1, 3, 8, 8), (4, 3, 3, 3), "float32", groups=2)
    with pytest.raises(ValueError, match="output would be empty"):
        cg.conv2d_fprop((1, 3, 2, 2), (4, 3, 3, 3), "float32")


def test_sdpa_descriptions_lay_out_packed_heads_and_stats():
    d = cg.sdpa_forward(2, 3, 5, 7, 16, "bfloat16", causal=True)
    q, k, o, st = (d.tensor(n) for n in ("q", "k", "o", "stats"))
    assert q.dims == (2, 3, 5, 16) and q.strides == (5 * 3 * 16, 16, 3 * 16, 1)  # BSHD memory
    assert k.dims == (2, 3, 7, 16) and o.output and st.output and st.dtype == "float32"
    params = dict(d.ops[0].params)
    assert params["attn_scale"] == pytest.approx(0.25) and params["use_causal_mask"] is True
    bwd = cg.sdpa_backward(2, 3, 5, 7, 16, "float16", padding=True)
    assert [n for n, _ in bwd.ops[0].inputs][:6] == ["q", "k", "v", "o", "dO", "stats"]
    assert bwd.ops[0].outputs == ("dQ", "dK", "dV") and bwd.tensor("seq_len_q").dtype == "int32"
    for args, msg in [((1, 1, 4, 4, 64, "float32"), "float16/bfloat16"),
                      ((1, 1, 4, 4, 264, "bfloat16"), "head dim 264"),
                      ((1, 1, 4, 4, 12, "bfloat16"), "multiple of 8")]:  # fmt: skip
        with pytest.raises(UnsupportedCallError, match=msg):
            cg.sdpa_forward(*args)


def test_descriptions_are_cache_keys():
    a, b = _descs()[0], _descs()[0]
    assert a == b and hash(a) == hash(b) and a != _descs()[1]


def test_references_match_torch(device):
    rng = np.random.default_rng(0)
    x, w = (
        rng.standard_normal((2, 4, 9, 9)).astype(np.float32),
        rng.standard_normal((6, 2, 3, 3)).astype(np.float32),
    )  # noqa: E501
    b = rng.standard_normal(6).astype(np.float32)
    q, k, v = (rng.standard_normal((2, 3, s, 8)).astype(np.float32) for s in (5, 7, 7))
    d = backend.device(device)
    with backend.device_scope(d):
        X, W, B, Q, K, V = (backend.to_device(a, d) for a in (x, w, b, q, k, v))
        y = backend.to_numpy(cg.conv2d_reference(X, W, B, 2, 1, 1, 2, relu=True))
        o = backend.to_numpy(cg.sdpa_reference(Q, K, V, 0.3, causal=True))
    want = torch.relu(
        tF.conv2d(*(torch.tensor(a) for a in (x, w, b)), stride=2, padding=1, groups=2)
    )  # noqa: E501
    np.testing.assert_allclose(y, want.numpy(), rtol=1e-4, atol=1e-5)
    tq, tk, tv = (torch.tensor(a) for a in (q, k, v))
    mask = torch.ones(5, 7, dtype=torch.bool).tril(diagonal=2)
    want = tF.scaled_dot_product_attention(tq, tk, tv, attn_mask=mask, scale=0.3)
    np.testing.assert_allclose(o, want.numpy(), rtol=1e-5, atol=1e-6)


def test_cudnn_paths_are_registered_on_when_verified_and_fall_back_on_cpu(monkeypatch):
    monkeypatch.delenv(fastpath.ENV, raising=False)
    for name in ("cudnn.conv2d", "cudnn.sdpa"):
        assert name in {p.name for p in fastpath.paths()}
        assert fastpath.enabled(name) == bool(fastpath.verified_on(name))
    q = np.ones((1, 1, 4, 8), np.float32)
    np.testing.assert_allclose(fastpath.call("cudnn.sdpa", q, q, q), q, rtol=1e-6)
    with pytest.raises(UnsupportedCallError, match="GPU"):
        cg.execute(cg.sdpa_forward(1, 1, 4, 4, 8, "bfloat16"), {"q": q})


@needs_cudnn
@pytest.mark.parametrize("i", range(len(_descs())))
def test_the_frontend_builds_each_description(i):
    desc = _descs()[i]
    g, tensors = cg.construct(desc)
    for t in desc.tensors:
        got = tensors[t.name]
        assert list(got.get_dim()) == list(t.dims) and list(got.get_stride()) == list(t.strides)


@needs_cudnn
def test_frontend_infers_the_conv_output_dims_we_describe():
    import cudnn

    d = cg.conv2d_fprop(
        (2, 4, 11, 9), (6, 4, 3, 3), "float32", stride=2, padding=(2, 1), dilation=2
    )
    g = cudnn.pygraph()
    x, w = (g.tensor(name=n, dim=list(d.tensor(n).dims), stride=list(d.tensor(n).strides),
                     data_type=cudnn.data_type.FLOAT) for n in ("x", "w"))  # fmt: skip
    y = g.conv_fprop(image=x, weight=w, **{k: list(v) for k, v in d.ops[0].params})
    assert tuple(y.get_dim()) == d.tensor("y").dims
