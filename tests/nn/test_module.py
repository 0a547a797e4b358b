"""Module mechanics against PyTorch: registration, names, state dicts, repr, modes,
devices, hooks, containers, gradient clipping."""

import math

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn as nn

torch = pytest.importorskip("torch", reason="PyTorch (CPU build) is the test oracle")
tnn = torch.nn


def _build(lib):
    """The same small architecture in torch or manygrad."""
    m = lib.nn
    return m.Sequential(
        m.Conv2d(3, 4, 3, padding=1),
        m.BatchNorm2d(4),
        m.ReLU(),
        m.MaxPool2d(2),
        m.Flatten(),
        m.Linear(4 * 4 * 4, 10),
        m.LayerNorm(10),
        m.Dropout(0.1),
        m.Linear(10, 3, bias=False),
    )


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4)
        self.register_buffer("scale", mg.ones(4))
        self.register_buffer("cache", mg.zeros(2), persistent=False)
        self.extra = nn.Parameter(mg.zeros(3))

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale


class _TBlock(tnn.Module):
    def __init__(self):
        super().__init__()
        self.fc = tnn.Linear(4, 4)
        self.bn = tnn.BatchNorm1d(4)
        self.register_buffer("scale", torch.ones(4))
        self.register_buffer("cache", torch.zeros(2), persistent=False)
        self.extra = tnn.Parameter(torch.zeros(3))


def _keys_shapes(sd):
    return [(k, tuple(v.shape)) for k, v in sd.items()]


@pytest.mark.parametrize("make", [
    lambda lib: _build(lib),
    lambda lib: lib.nn.MultiheadAttention(8, 2),
    lambda lib: lib.nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True),
    lambda lib: lib.nn.TransformerEncoderLayer(8, 2, 16),
    lambda lib: lib.nn.TransformerEncoderLayer(8, 2, 16, bias=False, norm_first=True),
    lambda lib: lib.nn.Sequential(lib.nn.BatchNorm1d(3, affine=False), lib.nn.GroupNorm(1, 3)),
    lambda lib: lib.nn.ModuleDict({"emb": lib.nn.Embedding(5, 2), "out": lib.nn.ModuleList(
        [lib.nn.Linear(2, 2), lib.nn.RMSNorm(2)])}),
    lambda lib: lib.nn.ConvTranspose2d(4, 6, 3, groups=2),
])  # fmt: skip
def test_state_dict_keys_and_shapes_match_torch(make):
    assert _keys_shapes(make(mg).state_dict()) == _keys_shapes(make(torch).state_dict())


def test_custom_module_registration_matches_torch():
    m, t = _Block(), _TBlock()
    assert _keys_shapes(m.state_dict()) == _keys_shapes(t.state_dict())
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in m.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in m.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in m.named_children()] == [n for n, _ in t.named_children()]
    assert [n for n, _ in m.named_parameters(prefix="net", recurse=False)] == ["net.extra"]
    nbt = m.state_dict()["bn.num_batches_tracked"]
    assert nbt.dtype == mg.int64 and nbt.ndim == 0


def test_state_dict_values_share_memory_and_are_detached():
    lin = nn.Linear(3, 2)
    sd = lin.state_dict()
    assert not sd["weight"].requires_grad
    assert sd["weight"]._data is lin.weight._data


def test_parameter_shares_array_and_reprs_like_torch():
    t = mg.randn(3)
    p = nn.Parameter(t)
    assert p._data is t._data and p.requires_grad and isinstance(p, mg.Tensor)
    assert repr(nn.Parameter(mg.ones(2))) == repr(tnn.Parameter(torch.ones(2)))
    assert not nn.Parameter(mg.ones(2), requires_grad=False).requires_grad


def test_load_state_dict_copies_in_place_and_converts(device):
    t_net, m_net = _build(torch), _build(mg)
    m_net.to(device)
    w_before = m_net[5].weight
    sd = {k: mg.tensor(v.numpy().astype(np.float64)) for k, v in t_net.state_dict().items()}
    result = m_net.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert m_net[5].weight is w_before  # same object: optimizers keep their references
    assert w_before.dtype == mg.float32 and w_before.device == mg.device(device)
    np.testing.assert_allclose(w_before.detach().cpu().numpy(), t_net[5].weight.detach().numpy())
    assert m_net[1].num_batches_tracked.dtype == mg.int64


def test_load_state_dict_lists_every_problem_in_one_error():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4))
    sd = net.state_dict()
    del sd["1.bias"]
    sd["0.weight"] = mg.zeros(5, 2)
    sd["2.weight"] = mg.zeros(1)
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "1.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "2.weight"' in msg
    assert "size mismatch for 0.weight" in msg and "(5, 2)" in msg and "(3, 2)" in msg


def test_load_state_dict_non_strict_returns_named_tuple():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 4))
    sd = net.state_dict()
    del sd["1.bias"]
    sd["extra"] = mg.zeros(1)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["1.bias"] and res.unexpected_keys == ["extra"]
    missing, unexpected = res
    assert missing == ["1.bias"]
    sd2 = net.state_dict()
    sd2["0.bias"] = mg.zeros(7)
    with pytest.raises(RuntimeError, match="size mismatch for 0.bias"):
        net.load_state_dict(sd2, strict=False)


def test_load_state_dict_without_num_batches_tracked():
    bn = nn.BatchNorm1d(3)
    sd = dict(bn.state_dict())  # NOTE: no _metadata (version 2), as an old checkpoint's
    del sd["num_batches_tracked"]
    assert bn.load_state_dict(sd).missing_keys == []


def test_load_state_dict_from_torch_roundtrip_forward():
    t_net, m_net = _build(torch).eval(), _build(mg).eval()
    m_net.load_state_dict({k: mg.tensor(v.numpy()) for k, v in t_net.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    expected = t_net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(m_net(mg.tensor(x)).detach().numpy(), expected, rtol=1e-4,
                               atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("make", [
    lambda lib: _build(lib),
    lambda lib: lib.nn.TransformerEncoderLayer(8, 2, 16),
    lambda lib: lib.nn.ModuleList([lib.nn.Linear(2, 2) for _ in range(3)] + [lib.nn.ReLU()]),
    lambda lib: lib.nn.ModuleDict({"a": lib.nn.Conv2d(3, 4, 3, padding="same", bias=False)}),
    lambda lib: lib.nn.Sequential(
        lib.nn.Conv1d(2, 4, 3, stride=2, dilation=2, groups=2, padding_mode="circular"),
        lib.nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1), lib.nn.GELU("tanh"),
        lib.nn.LeakyReLU(0.2), lib.nn.ELU(), lib.nn.Softplus(), lib.nn.Softmax(-1),
        lib.nn.LogSoftmax(1), lib.nn.SiLU(), lib.nn.Tanh(), lib.nn.Sigmoid(),
        lib.nn.Embedding(10, 3, padding_idx=0), lib.nn.RMSNorm(4), lib.nn.GroupNorm(2, 4),
        lib.nn.AvgPool2d(2), lib.nn.AdaptiveAvgPool2d((1, 1)), lib.nn.Unflatten(1, (2, 3)),
        lib.nn.Identity(), lib.nn.BatchNorm1d(3, momentum=None, affine=False),
        lib.nn.CrossEntropyLoss(), lib.nn.MSELoss(), lib.nn.BCEWithLogitsLoss(),
        lib.nn.ModuleList(),
    ),
])  # fmt: skip
def test_repr_matches_torch(make):
    if not torch.__version__.startswith("2.13"):
        # NOTE: module reprs change between PyTorch releases (BatchNorm's bias=, ...)
        pytest.skip(f"manygrad prints modules as PyTorch 2.13; this is {torch.__version__}")
    assert repr(make(mg)) == str(make(torch))


def test_train_eval_flags():
    net = _build(mg)
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_to_fakegpu_moves_params_buffers_and_grads_then_trains():
    net = _build(mg)
    params = list(net.parameters())
    x = mg.randn(2, 3, 8, 8)
    net(x).sum().backward()
    net.to("fakegpu")
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    for _, t in list(net.named_parameters()) + list(net.named_buffers()):
        assert t.device == mg.device("fakegpu")
    assert all(p.grad.device == mg.device("fakegpu") for p in params if p.grad is not None)
    net.zero_grad()
    assert all(p.grad is None for p in params)
    out = net(x.to("fakegpu"))
    assert out.device == mg.device("fakegpu")
    out.sum().backward()
    assert all(p.grad is not None and p.grad.device == mg.device("fakegpu") for p in params)
    net.cpu()
    assert all(p.device == mg.device("cpu") for p in params)


def test_dtype_conversions_only_cast_floating():
    net = _build(mg)
    net.double()
    assert all(p.dtype == mg.float64 for p in net.parameters())
    assert net[1].num_batches_tracked.dtype == mg.int64
    net.half()
    assert net[1].running_mean.dtype == mg.float16
    net.bfloat16()
    assert net[0].weight.dtype == mg.bfloat16
    net.float()
    assert net[0].weight.dtype == mg.float32
    net.to(mg.float64)
    assert net[5].bias.dtype == mg.float64
    with pytest.raises(TypeError):
        net.to(mg.int32)


def test_zero_grad_modes():
    lin = nn.Linear(3, 2)
    lin(mg.randn(4, 3)).sum().backward()
    g = lin.weight.grad
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad is g and not np.any(g.numpy())
    lin.zero_grad()
    assert lin.weight.grad is None


def test_apply_requires_grad_and_children():
    net = _build(mg)
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and seen.count("Linear") == 2
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    assert len(list(net.children())) == 9
    assert len(list(net.parameters(recurse=False))) == 0


def test_setattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(mg.zeros(2))
    with pytest.raises(TypeError):
        m.w = mg.zeros(2)  # a plain tensor can't replace a parameter
    m.w = None
    assert "w" in m._parameters and m.w is None
    m.register_buffer("b", mg.zeros(1))
    m.b = mg.ones(1)
    assert m._buffers["b"].numpy()[0] == 1
    m.sub = nn.Linear(1, 1)
    assert "sub" in m._modules
    del m.sub
    assert "sub" not in m._modules
    with pytest.raises(KeyError):
        m.register_buffer("a.b", mg.zeros(1))
    with pytest.raises(AttributeError):
        _ = m.missing


def test_shared_parameters_counted_once():
    lin = nn.Linear(2, 2)
    net = nn.Sequential(lin, lin)
    assert len(list(net.parameters())) == 2
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda mod, args, out: calls.append(out) or out + 1)
    y = lin(mg.ones(1, 2))
    np.testing.assert_allclose(y.detach().numpy(), lin.bias.detach().numpy()[None] + 1)
    assert len(calls) == 1
    h1.remove()
    h2.remove()
    y2 = lin(mg.ones(1, 2))
    assert len(calls) == 1 and not np.allclose(y2.detach().numpy(), y.detach().numpy())


def test_sequential_indexing_slicing_append():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub._modules) == ["1", "2"]
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and list(seq._modules)[-1] == "3"
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and isinstance(seq[1], nn.Linear)
    seq.insert(1, nn.Tanh())
    assert isinstance(seq[1], nn.Tanh) and len(seq) == 4
    from collections import OrderedDict

    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.fc is named[0]
    assert tuple(named(mg.zeros(3, 2)).shape) == (3, 2)


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.Linear(2, 2)])
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    ml += [nn.Sigmoid()]
    assert len(ml) == 4 and isinstance(ml[-1], nn.Sigmoid)
    assert isinstance(ml[1:3], nn.ModuleList) and len(ml[1:3]) == 2
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2"]
    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.ReLU()
    assert "a" in md and list(md.keys()) == ["a", "b"] and len(md) == 2
    assert md.pop("a") is not None and list(md) == ["b"]


def test_deepcopy_module_is_independent():
    import copy

    lin = nn.Linear(2, 2)
    c = copy.deepcopy(lin)
    assert isinstance(c.weight, nn.Parameter) and c.weight._data is not lin.weight._data
    np.testing.assert_array_equal(c.weight.detach().numpy(), lin.weight.detach().numpy())


def _grads_pair(rng):
    """The same parameters with the same grads in torch and manygrad."""
    shapes = [(3, 4), (5,), (2, 2, 2)]
    t_params, m_params = [], []
    for s in shapes:
        g = rng.standard_normal(s)
        tp = torch.zeros(s, dtype=torch.float64, requires_grad=True)
        tp.grad = torch.from_numpy(g.copy())
        mp = nn.Parameter(mg.zeros(*s, dtype=mg.float64))
        mp.grad = mg.tensor(g.copy())
        t_params.append(tp)
        m_params.append(mp)
    return t_params, m_params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, device):
    t_params, m_params = _grads_pair(np.random.default_rng(0))
    for p in m_params:
        p.grad = p.grad.to(device)
    mg.backend.fake_stats.reset()
    total = nn.utils.clip_grad_norm_(m_params, max_norm, norm_type=norm_type)
    assert mg.backend.fake_stats.syncs == 0, "clip_grad_norm_ must not read the norm on the host"
    expected = tnn.utils.clip_grad_norm_(t_params, max_norm, norm_type=norm_type)
    assert total.device == mg.device(device) and total.ndim == 0
    np.testing.assert_allclose(total.cpu().numpy(), expected.numpy(), rtol=1e-10)
    for tp, mp in zip(t_params, m_params):
        np.testing.assert_allclose(mp.grad.cpu().numpy(), tp.grad.numpy(), rtol=1e-10)


def test_clip_grad_norm_nonfinite_error():
    p = nn.Parameter(mg.zeros(2))
    p.grad = mg.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_clip_grad_value_and_vectors():
    t_params, m_params = _grads_pair(np.random.default_rng(1))
    nn.utils.clip_grad_value_(m_params, 0.3)
    tnn.utils.clip_grad_value_(t_params, 0.3)
    for tp, mp in zip(t_params, m_params):
        np.testing.assert_array_equal(mp.grad.numpy(), tp.grad.numpy())
    lin = nn.Linear(3, 2)
    vec = nn.utils.parameters_to_vector(lin.parameters())
    assert tuple(vec.shape) == (8,)
    np.testing.assert_array_equal(vec.detach().numpy()[:6], lin.weight.detach().numpy().ravel())
    nn.utils.vector_to_parameters(vec * 0 + 1, lin.parameters())
    assert np.all(lin.weight.detach().numpy() == 1) and np.all(lin.bias.detach().numpy() == 1)


def test_training_step_on_fakegpu_makes_no_host_syncs():
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.GELU(), nn.MaxPool2d(2),
        nn.Flatten(2), nn.Unflatten(2, (4, 4)), nn.Flatten(), nn.Linear(64, 8), nn.Dropout(0.2),
    ).to("fakegpu")  # fmt: skip
    enc = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).to("fakegpu")
    emb = nn.Embedding(10, 8).to("fakegpu")
    x = mg.randn(3, 2, 8, 8, device="fakegpu")
    ids = mg.randint(0, 10, (3, 5), device="fakegpu")
    kpm = mg.zeros(3, 5, dtype=mg.bool, device="fakegpu")
    mg.backend.fake_stats.reset()
    h = net(x).unsqueeze(1) + emb(ids)
    out = enc(h, src_key_padding_mask=kpm, is_causal=True)
    loss = nn.CrossEntropyLoss()(out.reshape(15, 8), ids.reshape(15) % 8)
    loss.backward()
    nn.utils.clip_grad_norm_(list(net.parameters()) + list(enc.parameters()), 1.0)
    assert mg.backend.fake_stats.syncs == 0
    assert all(p.grad is not None for p in enc.parameters())


def test_parameter_list_and_dict_register_like_torch():
    pl = nn.ParameterList([mg.ones(3), nn.Parameter(mg.zeros(2, 2))])
    tl = tnn.ParameterList([torch.ones(3), tnn.Parameter(torch.zeros(2, 2))])
    assert _keys_shapes(pl.state_dict()) == _keys_shapes(tl.state_dict())
    assert all(isinstance(p, nn.Parameter) for p in pl) and len(pl) == 2
    assert repr(pl).replace("manygrad", "torch") == str(tl)
    pl.append(mg.zeros(1))
    assert len(list(pl.parameters())) == 3 and tuple(pl[-1].shape) == (1,)
    pd = nn.ParameterDict({"a": mg.ones(2)})
    pd["b"] = mg.zeros(3)
    assert list(pd.state_dict()) == ["a", "b"] and "b" in pd and len(pd) == 2
    assert isinstance(pd["b"], nn.Parameter)
    del pd["a"]
    assert list(pd.keys()) == ["b"] and len(list(pd.parameters())) == 1
