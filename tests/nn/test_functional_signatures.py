"""``mg.nn.functional`` with PyTorch's signatures: ``inplace=True`` that writes into the
input (with autograd's rules), the deprecated ``size_average`` / ``reduce`` of the losses,
``weight=`` of mse_loss, l1_loss and huber_loss, and calls by keyword, against PyTorch."""

import warnings

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")
F, TF = mg.nn.functional, torch.nn.functional

X = np.array([[-2.5, -0.7, -0.1, 0.0], [0.2, 0.9, 1.7, 3.5], [-4.0, 2.2, -1.3, 0.6]])


def _pair(a, device="cpu", grad=False):
    return (
        mg.tensor(a, device=device, requires_grad=grad),
        torch.tensor(a, requires_grad=grad),
    )


def _close(m, t, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(m.detach().cpu().numpy()), t.detach().numpy(),
                               rtol=rtol, atol=atol)  # fmt: skip


# ---------------------------------------------------------------------------- inplace=True

# (name, positional args after input); rrelu in eval mode is deterministic
INPLACE = [
    ("relu", ()), ("elu", ()), ("elu", (0.4,)), ("leaky_relu", ()), ("leaky_relu", (0.2,)),
    ("silu", ()), ("hardtanh", (-0.5, 1.0)), ("relu6", ()), ("selu", ()), ("celu", (0.7,)),
    ("mish", ()), ("hardsigmoid", ()), ("hardswish", ()), ("threshold", (0.5, -1.0)),
    ("rrelu", (0.1, 0.3, False)),
]  # fmt: skip
IDS = [f"{n}{a}" for n, a in INPLACE]


@pytest.mark.parametrize("name,args", INPLACE, ids=IDS)
def test_inplace_writes_the_input(name, args, device):
    xm, xt = _pair(X, device)
    want = getattr(TF, name)(xt.clone(), *args)
    v0 = xm._version
    out = getattr(F, name)(xm, *args, inplace=True)
    assert out is xm
    assert xm._version > v0
    _close(xm, want)
    # inplace=False leaves the input alone
    xm2 = mg.tensor(X, device=device)
    out2 = getattr(F, name)(xm2, *args, inplace=False)
    assert out2 is not xm2
    _close(xm2, torch.tensor(X))
    _close(out2, want)


@pytest.mark.parametrize("name,args", INPLACE, ids=IDS)
def test_inplace_on_a_non_leaf_gives_pytorchs_gradients(name, args, device):
    xm, xt = _pair(X, device, grad=True)
    wm, wt = _pair(np.linspace(-1.0, 2.0, X.size).reshape(X.shape), device)
    ym, yt = xm * 2, xt * 2
    om = getattr(F, name)(ym, *args, inplace=True)
    ot = getattr(TF, name)(yt, *args, inplace=True)
    assert om is ym and ot is yt
    _close(ym, yt)
    (ym * wm).sum().backward()
    (yt * wt).sum().backward()
    _close(xm.grad, xt.grad, rtol=1e-7)


@pytest.mark.parametrize("name,args", INPLACE, ids=IDS)
def test_inplace_on_a_leaf_that_requires_grad_raises(name, args):
    xm = mg.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(F, name)(xm, *args, inplace=True)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(TF, name)(torch.tensor(X, requires_grad=True), *args, inplace=True)
    _close(xm, torch.tensor(X))  # unchanged
    with mg.no_grad():  # allowed without autograd, as in PyTorch
        getattr(F, name)(xm, *args, inplace=True)
    _close(xm, getattr(TF, name)(torch.tensor(X), *args))


def test_inplace_relu_of_a_view_writes_the_base():
    xm, xt = _pair(X, grad=True)
    bm, bt = xm * 1, xt * 1
    F.relu(bm[0], inplace=True)
    TF.relu(bt[0], inplace=True)
    _close(bm, bt)
    (bm * bm).sum().backward()
    (bt * bt).sum().backward()
    _close(xm.grad, xt.grad)


@pytest.mark.parametrize("name,args", [("relu_", ()), ("elu_", (0.5,)), ("selu_", ()),
                                       ("celu_", (0.7,)), ("leaky_relu_", (0.2,)),
                                       ("hardtanh_", (-0.5, 1.0)),
                                       ("threshold_", (0.5, -1.0))])  # fmt: skip
def test_underscore_forms_record_gradients(name, args):
    xm, xt = _pair(X, grad=True)
    ym, yt = xm * 1.5, xt * 1.5
    assert getattr(F, name)(ym, *args) is ym
    getattr(TF, name)(yt, *args)
    _close(ym, yt)
    (ym * ym).sum().backward()
    (yt * yt).sum().backward()
    _close(xm.grad, xt.grad, rtol=1e-7)


def test_dropout_inplace(device):
    a = np.arange(1.0, 201.0)
    xm = mg.tensor(a, device=device, requires_grad=True)
    ym = xm * 1
    out = F.dropout(ym, p=0.25, training=True, inplace=True)
    assert out is ym
    kept = ym.detach().cpu().numpy() != 0
    assert 0 < kept.sum() < a.size
    np.testing.assert_allclose(ym.detach().cpu().numpy()[kept], a[kept] / 0.75)
    ym.sum().backward()
    np.testing.assert_allclose(xm.grad.cpu().numpy(), kept / 0.75)
    # not in training: the input itself, unchanged
    zm = mg.tensor(a, device=device)
    assert F.dropout(zm, 0.5, False, True) is zm
    np.testing.assert_array_equal(zm.cpu().numpy(), a)
    with pytest.raises(RuntimeError, match="leaf"):
        F.dropout(mg.tensor(a, requires_grad=True), 0.5, inplace=True)


def test_layers_with_inplace_flag_still_work():
    for layer in (mg.nn.ReLU(inplace=True), mg.nn.LeakyReLU(0.1, inplace=True),
                  mg.nn.ELU(inplace=True), mg.nn.SiLU(inplace=True),
                  mg.nn.Hardtanh(inplace=True), mg.nn.ReLU6(inplace=True)):  # fmt: skip
        xm = mg.tensor(X, requires_grad=True)
        layer(xm * 1).sum().backward()
        assert xm.grad is not None and xm.grad.shape == xm.shape
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            layer(xm)  # as PyTorch: a leaf that requires grad can't be written in place
    xm = mg.tensor(X, requires_grad=True)  # eval dropout leaves its input alone
    mg.nn.Dropout(0.5, inplace=True).eval()(xm).sum().backward()
    assert xm.grad is not None


# ---------------------------------------------------------------------------- size_average, reduce

LEGACY = [(True, True), (True, False), (False, True), (False, False), (None, False),
          (False, None), (True, None), (None, True)]  # fmt: skip
PROB = np.array([[0.1, 0.8, 0.4], [0.6, 0.3, 0.95]])
TARGET01 = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.7]])
LOGP = np.log(np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]]))
LOSSES = {  # name: (input, target, extra keywords)
    "binary_cross_entropy": (PROB, TARGET01, {}),
    "binary_cross_entropy_with_logits": (X[:2, :3], TARGET01, {}),
    "cross_entropy": (X, np.array([1, 0, 3]), {}),
    "nll_loss": (LOGP, np.array([2, 0]), {}),
    "kl_div": (LOGP, PROB / PROB.sum(1, keepdims=True), {}),
    "l1_loss": (X, X[::-1] * 0.5, {}),
    "mse_loss": (X, X[::-1] * 0.5, {}),
    "smooth_l1_loss": (X, X[::-1] * 0.5, {"beta": 0.5}),
}


def _warned(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and the texts of the size_average warnings it gave."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(x.message) for x in w if "size_average" in str(x.message)]


@pytest.mark.parametrize("sa,red", LEGACY, ids=[f"size_average={a}-reduce={b}" for a, b in LEGACY])
@pytest.mark.parametrize("name", list(LOSSES))
def test_size_average_and_reduce_as_pytorch(name, sa, red):
    x, t, kw = LOSSES[name]
    xm, xt = _pair(x, grad=True)
    tm, tt = _pair(t)
    # reduction="sum" is overridden by the legacy flags, as in PyTorch
    args = dict(size_average=sa, reduce=red, reduction="sum", **kw)
    lm, msg_m = _warned(getattr(F, name), xm, tm, **args)
    lt, msg_t = _warned(getattr(TF, name), xt, tt, **args)
    assert msg_m == msg_t and len(msg_m) == 1
    assert tuple(lm.shape) == tuple(lt.shape)
    _close(lm, lt, rtol=1e-9)
    lm.sum().backward()
    lt.sum().backward()
    _close(xm.grad, xt.grad, rtol=1e-9)


@pytest.mark.parametrize("name", list(LOSSES))
def test_no_legacy_flags_no_warning(name):
    x, t, kw = LOSSES[name]
    lm, msg = _warned(getattr(F, name), mg.tensor(x), mg.tensor(t), reduction="sum", **kw)
    assert msg == []
    _close(lm, getattr(TF, name)(torch.tensor(x), torch.tensor(t), reduction="sum", **kw))


@pytest.mark.parametrize("sa,red", LEGACY)
def test_legacy_flags_of_modules_and_margin_losses(sa, red):
    mod_m, msg_m = _warned(mg.nn.MSELoss, size_average=sa, reduce=red)
    mod_t, msg_t = _warned(torch.nn.MSELoss, size_average=sa, reduce=red)
    assert mod_m.reduction == mod_t.reduction and msg_m == msg_t and len(msg_m) == 1
    a, b, y = [0.3, -1.2, 2.0], [1.0, 0.5, -0.5], [1.0, -1.0, 1.0]
    kw = dict(size_average=sa, reduce=red)
    lm, msg_m = _warned(F.margin_ranking_loss, *map(mg.tensor, (a, b, y)), **kw)
    lt, msg_t = _warned(TF.margin_ranking_loss, *map(torch.tensor, (a, b, y)), **kw)
    assert msg_m == msg_t and len(msg_m) == 1
    _close(lm, lt, rtol=1e-6)


def test_legacy_flags_override_batchmean():
    with pytest.warns(UserWarning, match="reduction='sum'"):
        kl_m = mg.nn.KLDivLoss(size_average=False, reduction="batchmean")
    with pytest.warns(UserWarning, match="reduction='sum'"):
        kl_t = torch.nn.KLDivLoss(size_average=False, reduction="batchmean")
    assert kl_m.reduction == kl_t.reduction == "sum"
    assert mg.nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"


def test_losses_take_pytorchs_positional_order():
    xm, xt = _pair(X)
    tm, tt = _pair(np.array([1, 0, 3]))
    # (input, target, weight, size_average, ignore_index, reduce, reduction)
    _close(F.cross_entropy(xm, tm, None, None, 0, None, "sum"),
           TF.cross_entropy(xt, tt, None, None, 0, None, "sum"))  # fmt: skip
    _close(F.nll_loss(xm, tm, None, None, 3, None, "none"),
           TF.nll_loss(xt, tt, None, None, 3, None, "none"))  # fmt: skip
    ym, yt = _pair(X[::-1] * 0.5)
    _close(F.mse_loss(xm, ym, None, None, "sum"), TF.mse_loss(xt, yt, None, None, "sum"))
    _close(F.huber_loss(xm, ym, "sum", 0.5), TF.huber_loss(xt, yt, "sum", 0.5))


# ---------------------------------------------------------------------------- weight=

WEIGHT = np.array([[0.5, 1.0, 2.0, 0.0], [1.5, 0.25, 1.0, 3.0], [0.1, 0.7, 2.5, 1.0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,kw", [("mse_loss", {}), ("l1_loss", {}), ("huber_loss", {}),
                                     ("huber_loss", {"delta": 0.4})])  # fmt: skip
def test_weighted_regression_losses(name, kw, reduction, device):
    xm, xt = _pair(X, device, grad=True)
    ym, yt = _pair(X[::-1] * 0.5 + 0.05, device, grad=True)
    wm, wt = _pair(WEIGHT, device, grad=True)
    lm = getattr(F, name)(xm, ym, reduction=reduction, weight=wm, **kw)
    lt = getattr(TF, name)(xt, yt, reduction=reduction, weight=wt, **kw)
    assert tuple(lm.shape) == tuple(lt.shape)
    _close(lm, lt)
    gm, gt = _pair(np.linspace(0.5, 1.5, lt.numel()).reshape(tuple(lt.shape)), device)
    (lm * gm).sum().backward()
    (lt * gt).sum().backward()
    for a, b in ((xm, xt), (ym, yt), (wm, wt)):
        _close(a.grad, b.grad, rtol=1e-9)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_weight_of_another_shape_raises(name):
    x = mg.tensor(X)
    with pytest.raises(ValueError, match="same size"):
        getattr(F, name)(x, x, weight=mg.ones(4))
    with pytest.raises(ValueError, match="same size"):
        getattr(TF, name)(torch.tensor(X), torch.tensor(X), weight=torch.ones(4))


def test_weighted_mse_mean_is_weighted_sum_over_weight_sum():
    x, y, w = mg.tensor([1.0, 2.0]), mg.tensor([0.0, 0.0]), mg.tensor([3.0, 1.0])
    assert F.mse_loss(x, y, weight=w).item() == pytest.approx((3 * 1 + 1 * 4) / 4)
    assert F.huber_loss(x, y, weight=w).item() == pytest.approx((3 * 0.5 + 1 * 1.5) / 2)


def test_loss_modules_keep_working():
    xm, xt = _pair(X)
    ym, yt = _pair(X[::-1] * 0.5)
    for cls, kw in ((mg.nn.MSELoss, {}), (mg.nn.L1Loss, {"reduction": "sum"}),
                    (mg.nn.HuberLoss, {"delta": 0.5}), (mg.nn.SmoothL1Loss, {"beta": 0.3})):  # fmt: skip
        _close(cls(**kw)(xm, ym), getattr(torch.nn, cls.__name__)(**kw)(xt, yt))


# ---------------------------------------------------------------------------- keywords


def test_calls_by_keyword_only():
    xm, xt = _pair(X)
    calls = [
        ("relu", dict(inplace=False)),
        ("elu", dict(alpha=0.3, inplace=False)),
        ("leaky_relu", dict(negative_slope=0.2, inplace=False)),
        ("silu", dict(inplace=False)),
        ("sigmoid", {}),
        ("tanh", {}),
        ("pad", dict(pad=(1, 2), mode="constant", value=-3.0)),
        ("pad", dict(pad=(2, 1), mode="reflect")),
        ("pad", dict(pad=(1, 0), mode="replicate")),
        ("dropout", dict(p=0.5, training=False, inplace=False)),
    ]
    for name, kw in calls:
        _close(getattr(F, name)(input=xm, **kw), getattr(TF, name)(input=xt, **kw))
    _close(mg.dropout(input=xm, p=0.3, train=False), torch.dropout(input=xt, p=0.3, train=False))
    ym, yt = _pair(X[::-1] * 0.5)
    wm, wt = _pair(WEIGHT)
    kw = dict(size_average=None, reduce=None, reduction="sum")
    _close(F.mse_loss(input=xm, target=ym, weight=wm, **kw),
           TF.mse_loss(input=xt, target=yt, weight=wt, **kw))  # fmt: skip
    _close(F.l1_loss(input=xm, target=ym, weight=wm, **kw),
           TF.l1_loss(input=xt, target=yt, weight=wt, **kw))  # fmt: skip
    _close(F.huber_loss(input=xm, target=ym, reduction="mean", delta=0.7, weight=wm),
           TF.huber_loss(input=xt, target=yt, reduction="mean", delta=0.7, weight=wt))  # fmt: skip
    tm, tt = _pair(np.array([1, 0, 3]))
    kw = dict(weight=None, size_average=None, ignore_index=0, reduce=None, reduction="mean")
    _close(F.cross_entropy(input=xm, target=tm, label_smoothing=0.1, **kw),
           TF.cross_entropy(input=xt, target=tt, label_smoothing=0.1, **kw))  # fmt: skip
    _close(F.nll_loss(input=xm, target=tm, **kw), TF.nll_loss(input=xt, target=tt, **kw))


def test_one_hot_by_keyword():
    idx_m, idx_t = _pair(np.array([0, 2, 1]))
    _close(F.one_hot(input=idx_m, num_classes=4), TF.one_hot(input=idx_t, num_classes=4))
