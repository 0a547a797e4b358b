"""Every layer against PyTorch: the torch layer's weights are copied in (through NumPy),
then forward outputs, input gradients and every parameter gradient are compared, in
float64 tightly and float32 loosely, on every device of the matrix."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn as nn

torch = pytest.importorskip("torch", reason="PyTorch (CPU build) is the test oracle")
tnn = torch.nn
torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a busy machine

# PyTorch's own advice about its internals, not about manygrad
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*(even kernel lengths|mismatched key_padding_mask).*:UserWarning"
)

TOL = {"float64": (1e-7, 1e-9), "float32": (2e-4, 2e-5)}
TDT = {"float64": torch.float64, "float32": torch.float32}


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t.detach().cpu().numpy()


def _sync_weights(t_layer, m_layer, device, dtype):
    """Load the torch layer's state into the manygrad layer (through NumPy) and move it."""
    m_layer.to(device).to(getattr(mg, dtype))
    sd = {k: mg.tensor(v.detach().numpy().copy()) for k, v in t_layer.state_dict().items()}
    m_layer.load_state_dict(sd)


def _make_input(spec, rng, dtype):
    """A spec is a shape (random float input that requires grad) or a fixed array."""
    if isinstance(spec, tuple):
        return rng.standard_normal(spec).astype(dtype), True
    return np.asarray(spec), False


def parity(t_layer, m_layer, specs, device, dtypes=("float64", "float32"), train=False,
           call=None, seed=0, rtol=None, atol=None, buffers=True):  # fmt: skip
    """Run torch and manygrad side by side; compare outputs, input and parameter grads."""
    call = call or (lambda layer, *xs: layer(*xs))
    for dtype in dtypes:
        r, a = TOL[dtype]
        r, a = rtol or r, atol or a
        rng = np.random.default_rng(seed)
        tl = t_layer.to(TDT[dtype])
        tl.train(train)
        m_layer.train(train)
        _sync_weights(tl, m_layer, device, dtype)
        tl.zero_grad()
        m_layer.zero_grad()
        inputs = [_make_input(s, rng, dtype) for s in specs]
        t_in = [torch.from_numpy(x.copy()).requires_grad_(g) for x, g in inputs]
        m_in = [mg.tensor(x.copy(), device=device) for x, _ in inputs]
        for t, (_, g) in zip(m_in, inputs):
            t.requires_grad_(g)
        t_out, m_out = call(tl, *t_in), call(m_layer, *m_in)
        t_outs = list(t_out) if isinstance(t_out, tuple) else [t_out]
        m_outs = list(m_out) if isinstance(m_out, tuple) else [m_out]
        assert len(t_outs) == len(m_outs)
        where = f"{type(m_layer).__name__} [{dtype}, {device}]"
        t_loss, m_loss = 0, 0
        for i, (to, mo) in enumerate(zip(t_outs, m_outs)):
            if to is None:
                assert mo is None, f"{where}: output {i} should be None"
                continue
            assert mo.device == mg.device(device), f"{where}: output on {mo.device}"
            assert tuple(mo.shape) == tuple(to.shape), f"{where}: output {i} shape"
            assert str(mo.dtype).split(".")[-1] == str(to.dtype).split(".")[-1], where
            np.testing.assert_allclose(_np(mo), _np(to), rtol=r, atol=a,
                                       err_msg=f"{where}: output {i}")  # fmt: skip
            if to.requires_grad:
                u = rng.standard_normal(tuple(to.shape)).astype(dtype)
                t_loss = t_loss + (to * torch.from_numpy(u)).sum()
                m_loss = m_loss + (mo * mg.tensor(u, device=device)).sum()
        if isinstance(t_loss, torch.Tensor):
            t_loss.backward()
            m_loss.backward()
            for i, (ti, mi) in enumerate(zip(t_in, m_in)):
                if ti.requires_grad:
                    np.testing.assert_allclose(_np(mi.grad), _np(ti.grad), rtol=r, atol=a,
                                               err_msg=f"{where}: grad of input {i}")  # fmt: skip
            t_params = dict(tl.named_parameters())
            m_params = dict(m_layer.named_parameters())
            assert list(t_params) == list(m_params), where
            for name, tp in t_params.items():
                mp = m_params[name]
                if tp.grad is None:
                    assert mp.grad is None or not np.any(_np(mp.grad)), f"{where}: {name}"
                    continue
                assert mp.grad is not None, f"{where}: no grad for {name}"
                assert mp.grad.device == mg.device(device), f"{where}: {name} grad device"
                np.testing.assert_allclose(_np(mp.grad), _np(tp.grad), rtol=r, atol=a,
                                           err_msg=f"{where}: grad of {name}")  # fmt: skip
        if buffers:
            for name, tb in tl.named_buffers():
                mb = dict(m_layer.named_buffers())[name]
                np.testing.assert_allclose(_np(mb), _np(tb), rtol=r, atol=a,
                                           err_msg=f"{where}: buffer {name}")  # fmt: skip


def _pair(cls_name, *args, **kwargs):
    torch.manual_seed(0)
    return getattr(tnn, cls_name)(*args, **kwargs), getattr(nn, cls_name)(*args, **kwargs)


LAYERS = [
    ("Linear", (5, 3), {}, [(4, 5)]),
    ("Linear", (5, 3), {"bias": False}, [(2, 3, 5)]),
    ("Conv1d", (3, 4, 3), {"padding": 1}, [(2, 3, 8)]),
    ("Conv1d", (4, 6, 3), {"stride": 2, "groups": 2, "dilation": 2}, [(2, 4, 11)]),
    ("Conv2d", (3, 4, 3), {"stride": 2, "padding": 1}, [(2, 3, 7, 7)]),
    ("Conv2d", (4, 6, 3), {"groups": 2, "dilation": 2, "bias": False}, [(1, 4, 9, 9)]),
    ("Conv2d", (3, 4, (3, 2)), {"padding": "same"}, [(2, 3, 6, 5)]),
    ("Conv2d", (3, 2, 3), {"padding": 1, "padding_mode": "reflect"}, [(1, 3, 5, 6)]),
    (
        "ConvTranspose2d",
        (3, 4, 3),
        {"stride": 2, "padding": 1, "output_padding": 1},
        [(2, 3, 4, 5)],
    ),  # fmt: skip
    ("ConvTranspose2d", (4, 2, 2), {"stride": 2, "groups": 2}, [(1, 4, 3, 3)]),
    ("Conv1d", (2, 3, 3), {"padding": 2, "padding_mode": "circular"}, [(2, 2, 6)]),
    ("Conv2d", (2, 3, 3), {"padding": (1, 2), "padding_mode": "replicate"}, [(1, 2, 4, 5)]),
    ("LayerNorm", (6,), {}, [(3, 4, 6)]),
    ("LayerNorm", ((4, 6),), {"elementwise_affine": False}, [(3, 4, 6)]),
    ("LayerNorm", (6,), {"bias": False, "eps": 1e-3}, [(5, 6)]),
    ("GroupNorm", (2, 4), {}, [(3, 4, 5, 5)]),
    ("GroupNorm", (3, 6), {"affine": False}, [(2, 6, 7)]),
    ("RMSNorm", (6,), {}, [(3, 6)]),
    ("RMSNorm", ((2, 6),), {"eps": 1e-6}, [(3, 2, 6)]),
    ("MaxPool2d", (2,), {}, [(2, 3, 6, 6)]),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1}, [(1, 2, 7, 7)]),
    ("AvgPool2d", (2,), {}, [(2, 3, 6, 6)]),
    ("AvgPool2d", (3, 2, 1), {"count_include_pad": False}, [(1, 2, 7, 7)]),
    ("AdaptiveAvgPool2d", ((2, 3),), {}, [(2, 3, 7, 8)]),
    ("ConvTranspose1d", (3, 4, 3), {"stride": 2, "padding": 1}, [(2, 3, 5)]),
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1}, [(2, 3, 9)]),
    ("AvgPool1d", (3, 2, 1), {}, [(2, 3, 9)]),
    ("AdaptiveAvgPool1d", (4,), {}, [(2, 3, 9)]),
    ("Flatten", (), {}, [(2, 3, 4)]),
    ("Unflatten", (1, (3, 4)), {}, [(2, 12)]),
    ("Identity", (), {}, [(3, 4)]),
    ("ReLU", (), {}, [(4, 5)]),
    ("GELU", (), {}, [(4, 5)]),
    ("GELU", ("tanh",), {}, [(4, 5)]),
    ("SiLU", (), {}, [(4, 5)]),
    ("Tanh", (), {}, [(4, 5)]),
    ("Sigmoid", (), {}, [(4, 5)]),
    ("LeakyReLU", (0.2,), {}, [(4, 5)]),
    ("ELU", (0.5,), {}, [(4, 5)]),
    ("Softplus", (2.0, 1.0), {}, [(4, 5)]),
    ("Softmax", (1,), {}, [(4, 5)]),
    ("LogSoftmax", (-1,), {}, [(4, 5)]),
    ("Dropout", (0.3,), {}, [(4, 5)]),  # eval mode: the identity
]


@pytest.mark.parametrize("name,args,kwargs,specs", LAYERS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(LAYERS)])  # fmt: skip
def test_layer_parity(name, args, kwargs, specs, device):
    t_layer, m_layer = _pair(name, *args, **kwargs)
    parity(t_layer, m_layer, specs, device)


BN_CASES = [
    ("BatchNorm1d", [(6, 4)], {}),
    ("BatchNorm1d", [(6, 4, 5)], {"momentum": 0.3}),
    ("BatchNorm2d", [(4, 4, 3, 3)], {}),
    ("BatchNorm2d", [(2, 4, 3, 3)], {"affine": False}),
    ("BatchNorm1d", [(6, 4)], {"track_running_stats": False}),
]


@pytest.mark.parametrize("cls,specs,kwargs", BN_CASES, ids=[str(i) for i in range(len(BN_CASES))])
def test_batchnorm_parity(cls, specs, kwargs, device):
    t_layer, m_layer = _pair(cls, 4, **kwargs)
    parity(t_layer, m_layer, specs, device, train=True)  # batch stats; running stats move
    parity(t_layer, m_layer, specs, device, train=False)  # running stats (or batch stats)


def test_batchnorm_momentum_none_cumulative(device):
    t_layer, m_layer = _pair("BatchNorm1d", 3, momentum=None)
    m_layer.to(device).double()
    t_layer.double()
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((5, 3))
        t_layer(torch.from_numpy(x))
        m_layer(mg.tensor(x, device=device))
    assert int(m_layer.num_batches_tracked.item()) == 3
    np.testing.assert_allclose(_np(m_layer.running_var), _np(t_layer.running_var), rtol=1e-10)


def test_batchnorm_rejects_wrong_dims():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(mg.zeros(2, 3))


def test_embedding_parity(device):
    t_layer, m_layer = _pair("Embedding", 10, 4, padding_idx=0)
    idx = np.array([[1, 0, 3, 3], [9, 2, 0, 1]])
    parity(t_layer, m_layer, [idx], device)
    assert not np.any(_np(m_layer.weight.grad)[0]), "padding row must get no gradient"


def test_embedding_padding_row_is_zero():
    emb = nn.Embedding(6, 3, padding_idx=2)
    assert np.all(emb.weight.detach().numpy()[2] == 0)
    assert np.any(emb.weight.detach().numpy()[1] != 0)


def _mha_call(need_weights=True, average=True, masks=None, same=True, causal=False):
    def call(layer, q, *rest):
        k, v = (q, q) if same else rest[:2]
        extra = rest if same else rest[2:]
        kw = {}
        extra = [m.to(q.dtype) if m.is_floating_point() else m for m in extra]
        if masks == "attn":
            kw["attn_mask"] = extra[0]
        elif masks == "kpm":
            kw["key_padding_mask"] = extra[0]
        elif masks == "both":
            kw["attn_mask"], kw["key_padding_mask"] = extra[0], extra[1]
        is_torch = isinstance(q, torch.Tensor)
        if causal:
            n = q.shape[0]
            m = np.triu(np.ones((n, n), bool), 1)
            kw["attn_mask"] = torch.from_numpy(m) if is_torch else mg.tensor(m, device=q.device)
            kw["is_causal"] = True
        return layer(q, k, v, need_weights=need_weights, average_attn_weights=average, **kw)

    return call


KPM = np.array([[False, False, True, False, True], [False] * 5, [False, True, False, False, False]])
ATTN_BOOL = np.triu(np.ones((5, 5), bool), 1)
ATTN_3D = np.random.default_rng(4).random((6, 5, 5)) < 0.3  # (N * heads, L, S)
ATTN_3D[..., 0] = False  # every query keeps one key
ATTN_FLOAT = np.random.default_rng(3).standard_normal((5, 5))

MHA_CASES = [
    ({}, [(5, 3, 8)], _mha_call()),
    ({}, [(5, 3, 8)], _mha_call(average=False)),
    ({}, [(5, 3, 8)], _mha_call(need_weights=False)),
    ({"batch_first": True}, [(3, 4, 8), (3, 5, 8), (3, 5, 8)], _mha_call(same=False)),
    ({"kdim": 6, "vdim": 4}, [(4, 2, 8), (5, 2, 6), (5, 2, 4)], _mha_call(same=False)),
    ({"bias": False}, [(5, 3, 8), KPM], _mha_call(masks="kpm")),
    ({}, [(5, 3, 8), ATTN_BOOL], _mha_call(masks="attn")),
    ({}, [(5, 3, 8), ATTN_FLOAT, KPM], _mha_call(masks="both", need_weights=False)),
    ({"add_bias_kv": True}, [(5, 3, 8), KPM], _mha_call(masks="kpm")),
    ({"add_zero_attn": True}, [(5, 3, 8), ATTN_BOOL], _mha_call(masks="attn")),
    ({}, [(5, 8)], _mha_call()),  # unbatched
    ({"batch_first": True}, [(3, 5, 8), ATTN_3D], _mha_call(masks="attn", average=False)),
    ({}, [(5, 3, 8)], _mha_call(causal=True, need_weights=False)),
]


@pytest.mark.parametrize(
    "kwargs,specs,call", MHA_CASES, ids=[str(i) for i in range(len(MHA_CASES))]
)
def test_multihead_attention_parity(kwargs, specs, call, device):
    t_layer, m_layer = _pair("MultiheadAttention", 8, 2, **kwargs)
    parity(t_layer, m_layer, specs, device, call=call)


@pytest.mark.parametrize("kwargs", [
    {}, {"norm_first": True}, {"activation": "gelu", "batch_first": True},
    {"bias": False, "layer_norm_eps": 1e-3},
])  # fmt: skip
def test_transformer_encoder_layer_parity(kwargs, device):
    t_layer, m_layer = _pair("TransformerEncoderLayer", 8, 2, 16, dropout=0.1, **kwargs)
    shape = (3, 5, 8) if kwargs.get("batch_first") else (5, 3, 8)
    parity(t_layer, m_layer, [shape], device)


def test_transformer_encoder_layer_masks(device):
    t_layer, m_layer = _pair("TransformerEncoderLayer", 8, 2, 16, dropout=0.0)

    def call(layer, x, kpm):
        return layer(x, src_key_padding_mask=kpm)

    parity(t_layer, m_layer, [(5, 3, 8), KPM], device, call=call, dtypes=("float64",))


def test_transformer_encoder_parity(device):
    torch.manual_seed(0)
    t_layer = tnn.TransformerEncoder(tnn.TransformerEncoderLayer(8, 2, 16), 2,
                                     enable_nested_tensor=False)  # fmt: skip
    m_layer = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2)
    assert list(m_layer.state_dict()) == list(t_layer.state_dict())
    parity(t_layer, m_layer, [(5, 3, 8)], device, dtypes=("float64",))


LOSSES = [
    ("CrossEntropyLoss", {}, [(6, 5), np.array([0, 4, 2, 2, 1, 3])]),
    (
        "CrossEntropyLoss",
        {"label_smoothing": 0.1, "reduction": "sum"},
        [(6, 5), np.array([0, 4, 2, 2, 1, 3])],
    ),  # fmt: skip
    (
        "CrossEntropyLoss",
        {"ignore_index": 1},
        [(4, 3, 2), np.array([[0, 1], [2, 2], [1, 0], [0, 0]])],
    ),  # fmt: skip
    ("NLLLoss", {"reduction": "none"}, [(6, 5), np.array([0, 4, 2, 2, 1, 3])]),
    ("MSELoss", {}, [(4, 3), (4, 3)]),
    ("MSELoss", {"reduction": "none"}, [(4, 3), (4, 3)]),
    ("L1Loss", {"reduction": "sum"}, [(4, 3), (4, 3)]),
    ("BCEWithLogitsLoss", {}, [(4, 3), np.random.default_rng(1).random((4, 3))]),
    ("BCELoss", {"reduction": "sum"}, [(4, 3), np.random.default_rng(1).random((4, 3))]),
    ("SmoothL1Loss", {"beta": 0.5}, [(4, 3), (4, 3)]),
    ("HuberLoss", {"delta": 0.7, "reduction": "none"}, [(4, 3), (4, 3)]),
    ("KLDivLoss", {"reduction": "batchmean"}, [(4, 3), (4, 3)]),
]


@pytest.mark.parametrize("name,kwargs,specs", LOSSES, ids=[f"{r[0]}-{i}" for i, r in
                                                           enumerate(LOSSES)])  # fmt: skip
def test_loss_parity(name, kwargs, specs, device):
    t_layer, m_layer = _pair(name, **kwargs)

    def call(layer, x, y):
        if isinstance(y, torch.Tensor) and y.dtype == torch.float64 and x.dtype != y.dtype:
            y = y.to(x.dtype)
        elif isinstance(y, mg.Tensor) and y.is_floating_point() and y.dtype != x.dtype:
            y = y.to(x.dtype)
        if name == "BCELoss":
            x = x.sigmoid()  # probabilities
        elif name == "KLDivLoss":
            x, y = x.log_softmax(-1), y.softmax(-1)
        return layer(x, y)

    parity(t_layer, m_layer, specs, device, call=call)


def test_weighted_losses(device):
    w = np.array([1.0, 2.0, 0.5, 1.5, 1.0])
    t_layer = tnn.CrossEntropyLoss(weight=torch.from_numpy(w))
    m_layer = nn.CrossEntropyLoss(weight=mg.tensor(w))
    assert list(m_layer.state_dict()) == list(t_layer.state_dict()) == ["weight"]
    parity(t_layer, m_layer, [(6, 5), np.array([0, 4, 2, 2, 1, 3])], device, dtypes=("float64",))
    pw = np.array([2.0, 0.5, 1.0])
    t_bce = tnn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(pw))
    m_bce = nn.BCEWithLogitsLoss(pos_weight=mg.tensor(pw))
    target = np.random.default_rng(2).random((4, 3))
    parity(t_bce, m_bce, [(4, 3), target], device, dtypes=("float64",))


def test_dropout_train_and_eval(device):
    drop = nn.Dropout(0.5)
    x = mg.ones(2000, device=device)
    y = drop(x).cpu().numpy()
    kept = y != 0
    assert 0.4 < kept.mean() < 0.6
    np.testing.assert_allclose(y[kept], 2.0)
    drop.eval()
    assert drop(x) is x


def test_train_eval_switches_batchnorm_and_dropout(device):
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    net.to(device)
    x = mg.randn(16, 4, device=device)
    net(x)
    assert int(net[1].num_batches_tracked.item()) == 1
    net.eval()
    assert not net.training and not net[2].training
    a, b = net(x), net(x)
    np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())
    assert int(net[1].num_batches_tracked.item()) == 1
    net.train()
    assert net[1].training


def test_layers_default_to_float32():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(18, 3))
    assert all(p.dtype == mg.float32 for p in net.parameters())
    y = net(mg.randn(1, 1, 5, 5))
    assert y.dtype == mg.float32 and tuple(y.shape) == (1, 3)


def test_conv_transpose_output_size(device):
    t_layer, m_layer = _pair("ConvTranspose2d", 3, 2, 3, stride=2, padding=1)

    def call(layer, x):
        return layer(x, output_size=[8, 9])

    parity(t_layer, m_layer, [(1, 3, 4, 5)], device, call=call)
    with pytest.raises(ValueError, match="not reachable"):
        m_layer(mg.zeros(1, 3, 4, 5, device=device), output_size=[12, 12])
