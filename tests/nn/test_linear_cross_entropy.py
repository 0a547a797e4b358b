"""F.linear_cross_entropy, nn.LinearCrossEntropyLoss and nn.LinearCrossEntropyOptions
against PyTorch 2.13: the reference and the chunked paths give PyTorch's losses and
gradients for every argument, on every device; PyTorch's checks, messages and fallback
warnings; the module's flat parameters; the chunked path's memory."""

import tracemalloc
import warnings

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(0)
TF, MF = torch.nn.functional, mg.nn.functional

KWARGS = [{}, {"reduction": "sum"}, {"reduction": "none"}, {"ignore_index": 3},
          {"weight": True, "ignore_index": 1}, {"weight": True, "reduction": "sum"},
          {"bias": False}, {"label_smoothing": 0.1}]  # fmt: skip


def _pair(arrays, device="cpu", grad=True):
    """The same arrays as PyTorch and manygrad tensors."""
    ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    ms = [mg.tensor(a, device=device, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    return ts, ms


def _close(m, t, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(m.detach().cpu().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


def _opts(lib, **kw):
    return lib.nn.LinearCrossEntropyOptions(**kw)


def _both(fn_t, fn_m, warns):
    """Run both, asserting each warns (the fallback) exactly when ``warns``."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        lt = fn_t()
        n = len(rec)
        lm = fn_m()
    got = [str(r.message) for r in rec]
    assert (n > 0) == warns and (len(got) - n > 0) == warns, got
    if warns:
        assert got[n].replace("manygrad.", "torch.") == got[0]
    return lt, lm


@pytest.mark.parametrize("kw", KWARGS, ids=[str(i) for i in range(len(KWARGS))])
@pytest.mark.parametrize("chunked", [False, True])
def test_equals_pytorch(kw, chunked, device):
    n, d, c = 13, 6, 7
    y = RNG.integers(0, c, n)
    y[:3] = [3, 1, 1]
    kw = dict(kw)
    use_w, use_b = kw.pop("weight", False), kw.pop("bias", True)
    arrays = [RNG.standard_normal((n, d)), RNG.standard_normal((c, d)), RNG.standard_normal(c)]
    (xt, wt, bt), (xm, wm, bm) = _pair(arrays, device)
    cw = RNG.uniform(0.5, 2, c)
    opt = {"batch_chunk_size": 4}
    lt, lm = _both(
        lambda: TF.linear_cross_entropy(
            xt, wt, torch.tensor(y), linear_bias=bt if use_b else None,
            weight=torch.tensor(cw) if use_w else None,
            options=_opts(torch, **opt) if chunked else None, **kw),
        lambda: MF.linear_cross_entropy(
            xm, wm, mg.tensor(y, device=device), linear_bias=bm if use_b else None,
            weight=mg.tensor(cw, device=device) if use_w else None,
            options=_opts(mg, **opt) if chunked else None, **kw),
        warns=chunked and "label_smoothing" in kw,
    )  # fmt: skip
    _close(lm, lt)
    gy = RNG.standard_normal(tuple(lt.shape))
    lt.backward(torch.tensor(gy))
    lm.backward(mg.tensor(gy, device=device))
    for a, b in ((xm, xt), (wm, wt)) + (((bm, bt),) if use_b else ()):
        _close(a.grad, b.grad)
    assert bm.grad is None if not use_b else True


@pytest.mark.parametrize("rows", [None, 5, 64])
def test_float32_auto_chunks_match_pytorch(rows, device):
    n, d, c = 40, 8, 300  # NOTE: auto picks 2-row chunks here (aspect_ratio:2)
    arrays = [RNG.standard_normal((n, d)).astype(np.float32),
              RNG.standard_normal((c, d)).astype(np.float32),
              RNG.standard_normal(c).astype(np.float32), RNG.integers(0, c, n)]  # fmt: skip
    (xt, wt, bt, yt), (xm, wm, bm, ym) = _pair(arrays, device)
    lt = TF.linear_cross_entropy(xt, wt, yt, linear_bias=bt,
                                 options=_opts(torch, batch_chunk_size=rows))  # fmt: skip
    lm = MF.linear_cross_entropy(xm, wm, ym, linear_bias=bm,
                                 options=_opts(mg, batch_chunk_size=rows))  # fmt: skip
    assert lm.dtype == mg.float32
    _close(lm, lt, rtol=1e-5, atol=1e-6)
    lt.backward()
    lm.backward()
    for a, b in ((xm, xt), (wm, wt), (bm, bt)):
        assert a.grad.dtype == mg.float32
        _close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("chunked", [False, True])
def test_unbatched_input(chunked):
    arrays = [RNG.standard_normal(5), RNG.standard_normal((9, 5)), np.array(4)]
    (xt, wt, yt), (xm, wm, ym) = _pair(arrays)
    for red in ("mean", "none"):
        ot, om = (_opts(torch), _opts(mg)) if chunked else (None, None)
        lt = TF.linear_cross_entropy(xt, wt, yt, reduction=red, options=ot)
        lm = MF.linear_cross_entropy(xm, wm, ym, reduction=red, options=om)
        assert tuple(lm.shape) == tuple(lt.shape) == ()
        _close(lm, lt)
        lt.backward()
        lm.backward()
        _close(xm.grad, xt.grad)
        _close(wm.grad, wt.grad)


@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.2, "reduction": "sum"}])
def test_class_probabilities_fall_back_with_pytorchs_warning(kw):
    n, d, c = 6, 4, 5
    p = RNG.uniform(size=(n, c))
    arrays = [RNG.standard_normal((n, d)), RNG.standard_normal((c, d)), p / p.sum(1, keepdims=True)]
    (xt, wt, pt), (xm, wm, pm) = _pair(arrays)
    lt, lm = _both(lambda: TF.linear_cross_entropy(xt, wt, pt, options=_opts(torch), **kw),
                   lambda: MF.linear_cross_entropy(xm, wm, pm, options=_opts(mg), **kw),
                   warns=True)  # fmt: skip
    _close(lm, lt)
    lt.backward()
    lm.backward()
    _close(xm.grad, xt.grad)
    _close(wm.grad, wt.grad)
    with pytest.raises(RuntimeError, match="ignore_index cannot be specified"):
        MF.linear_cross_entropy(xm, wm, pm, ignore_index=-100)


@pytest.mark.parametrize("probs", [False, True])
def test_k_dimensional_loss_and_module(probs):
    n, d, c, k = 4, 3, 5, (2, 3)
    torch.manual_seed(0)
    t = torch.nn.LinearCrossEntropyLoss(d, c, out_features=k, bias=True, reduction="sum",
                                        options=torch.nn.LinearCrossEntropyOptions())  # fmt: skip
    t = t.double()
    m = mg.nn.LinearCrossEntropyLoss(d, c, out_features=k, bias=True, reduction="sum",
                                     options=mg.nn.LinearCrossEntropyOptions()).double()  # fmt: skip
    m.load_state_dict({a: mg.tensor(v.detach().numpy()) for a, v in t.state_dict().items()})
    y = RNG.uniform(size=(n, c, *k)) if probs else RNG.integers(0, c, (n, *k))
    (xt, yt), (xm, ym) = _pair([RNG.standard_normal((n, d)), y])
    lt, lm = _both(lambda: t(xt, yt), lambda: m(xm, ym), warns=True)  # NOTE: K-dim: reference
    _close(lm, lt)
    lt.backward()
    lm.backward()
    _close(xm.grad, xt.grad)
    _close(m.linear.weight.grad, t.linear.weight.grad)
    _close(m.linear.bias.grad, t.linear.bias.grad)
    with pytest.raises(RuntimeError, match="requires batched input"):
        m(xm[0], ym[0])


def test_module_state_dict_repr_and_checks():
    for kw in ({}, {"bias": True, "weight": True}, {"out_features": (2,), "ignore_index": 3}):
        kw = dict(kw)
        w = kw.pop("weight", False)
        t = torch.nn.LinearCrossEntropyLoss(8, 5, weight=torch.ones(5) if w else None, **kw)
        m = mg.nn.LinearCrossEntropyLoss(8, 5, weight=mg.ones(5) if w else None, **kw)
        assert {a: tuple(v.shape) for a, v in m.state_dict().items()} == {
            a: tuple(v.shape) for a, v in t.state_dict().items()
        }
        assert list(m.state_dict()) == list(t.state_dict())
        assert repr(m) == repr(t)
    big = mg.nn.LinearCrossEntropyLoss(256, 32000, out_features=(2,), bias=True, device="meta")
    assert {a: tuple(v.shape) for a, v in big.state_dict().items()} == {
        "linear.weight": (64000, 256), "linear.bias": (64000,)}  # fmt: skip
    for lib in (torch, mg):
        with pytest.raises(RuntimeError, match=r"expected weight shape to be \(5,\), got \(6,\)"):
            lib.nn.LinearCrossEntropyLoss(8, 5, weight=lib.ones(6))
        with pytest.raises(RuntimeError, match=r"label_smoothing to be in range \[0, 1\], got 2"):
            lib.nn.LinearCrossEntropyLoss(8, 5, label_smoothing=2)


def _message(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, str(e).replace("manygrad.", "torch.")
    return None


@pytest.mark.parametrize("case", range(6))
def test_bad_inputs_like_pytorch(case):
    x, w, y = RNG.standard_normal((5, 3)), RNG.standard_normal((7, 3)), RNG.integers(0, 7, 5)
    args = [[x[None], w, y, None], [x, w[0], y, None], [x, w[:, :2], y, None],
            [x, w, y, np.zeros(3)], [x[0], w[:, None], y[:1], None],
            [x, w, y, np.zeros((7, 1))]][case]  # fmt: skip

    def call(lib):
        a = [None if v is None else lib.tensor(v) for v in args]
        return lambda: lib.nn.functional.linear_cross_entropy(*a[:3], linear_bias=a[3])

    got = _message(call(mg))
    assert got is not None and got == _message(call(torch))


OPTION_CASES = [{"acc_policy": "x"}, {"chunking_method": "foo"},
                {"chunking_method": "aspect_ratio:0"}, {"chunking_method": "ratio:2"},
                {"batch_chunk_size": 0}, {"batch_chunk_size": 2.5}, {"acc_dtype": "int32"}]  # fmt: skip


@pytest.mark.parametrize("kw", OPTION_CASES, ids=[str(i) for i in range(len(OPTION_CASES))])
def test_options_validation_like_pytorch(kw):
    def make(lib):
        k = {a: getattr(lib, v) if a == "acc_dtype" else v for a, v in kw.items()}
        return lambda: lib.nn.LinearCrossEntropyOptions(**k)

    got = _message(make(mg))
    assert got is not None and got == _message(make(torch))


def test_options_resolve_like_pytorch():
    o = mg.nn.LinearCrossEntropyOptions()
    assert o == mg.nn.LinearCrossEntropyOptions() and repr(o) == repr(
        torch.nn.LinearCrossEntropyOptions()
    )
    with pytest.raises(AttributeError):
        o.batch_chunk_size = 3
    dev = {"cpu": (torch.device("cpu"), mg.device("cpu")), "cuda": (torch.device("cuda"), mg.device("fakegpu"))}  # fmt: skip
    fields = ("batch_chunk_size", "chunking_method", "acc_policy")
    for kw in ({}, {"batch_chunk_size": 7}, {"chunking_method": "aspect_ratio:4"},
               {"chunking_method": None}, {"acc_policy": "balanced"}):  # fmt: skip
        for shape in ((2048, 256, 32000), (13, 6, 7), (1, 4, 1000), (100, 64, 10)):
            for dt in ("float32", "bfloat16", "float16"):
                for dv in ("cpu", "cuda"):
                    if dv == "cuda" and dt != "float32":
                        continue  # NOTE: PyTorch asks the (absent) GPU's capability
                    t = torch.nn.LinearCrossEntropyOptions(**kw)._adjust(
                        *shape, getattr(torch, dt), dev[dv][0]
                    )
                    m = mg.nn.LinearCrossEntropyOptions(**kw)._adjust(
                        *shape, getattr(mg, dt), dev[dv][1])  # fmt: skip
                    assert [getattr(m, f) for f in fields] == [getattr(t, f) for f in fields]
                    assert m.acc_dtype.name == str(t.acc_dtype).split(".")[1]
    for lib in (torch, mg):
        x, w, y = lib.randn(6, 4), lib.randn(9, 4), lib.tensor([1, 2, 3, 4, 5, 6])
        with pytest.raises(ValueError, match=r"give different chunk sizes \(3 vs 2\)"):
            opt = lib.nn.LinearCrossEntropyOptions(
                batch_chunk_size=3, chunking_method="aspect_ratio"
            )
            lib.nn.functional.linear_cross_entropy(x, w, y, options=opt)
        with pytest.raises(RuntimeError, match="supports float32 acc_dtype with float16"):
            opt = lib.nn.LinearCrossEntropyOptions(acc_dtype=lib.float64)
            lib.nn.functional.linear_cross_entropy(x, w, y, options=opt)


def test_second_backward_follows_pytorch():
    x = mg.randn(6, 4, requires_grad=True, dtype=mg.float64)
    w = mg.randn(9, 4, requires_grad=True, dtype=mg.float64)
    y = mg.tensor([1, 2, 3, 4, 5, 6])
    loss = MF.linear_cross_entropy(x, w, y, options=_opts(mg, batch_chunk_size=2))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="chunked backward called twice"):
        loss.backward()
    for kw in ({"options": _opts(mg, allow_retain_graph=True)},
               {"options": _opts(mg), "reduction": "none"}):  # fmt: skip
        x.grad = None
        loss = MF.linear_cross_entropy(x, w, y, **kw).sum()
        loss.backward(retain_graph=True)
        once = x.grad.clone()
        loss.backward()
        _close(x.grad, 2 * once)
    # NOTE: PyTorch's chunked node has no second derivative: its grad carries no graph
    loss = MF.linear_cross_entropy(x, w, y, options=_opts(mg))
    (gx,) = mg.autograd.grad(loss, x, create_graph=True)
    ref = MF.linear_cross_entropy(x, w, y)
    _close(gx, torch.tensor(mg.autograd.grad(ref, x)[0].numpy()))
    with pytest.raises(RuntimeError):
        mg.autograd.grad(gx.sum(), x)


def test_chunked_forward_and_backward_never_hold_all_logits():
    n, d, c = 256, 16, 4000  # all logits: 4 MB of float32; a chunk of 16 rows: 256 kB
    x = mg.randn(n, d, requires_grad=True)
    w = mg.randn(c, d, requires_grad=True)
    y = mg.tensor(RNG.integers(0, c, n))
    peaks = {}
    for name, opt in (("reference", None), ("chunked", _opts(mg, batch_chunk_size=16))):
        tracemalloc.start()
        MF.linear_cross_entropy(x, w, y, options=opt).backward()
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    logits = n * c * 4
    assert peaks["chunked"] < logits // 2 < peaks["reference"], peaks
