"""Differences from PyTorch that the Hamiltonian-network, EGNN, SAC, Sinkhorn and QAT port
scripts (tests/ports/scripts) led to, each compared with PyTorch: double backward through
piecewise-linear ops reaches what their masks were read from (zeros, not none), p=2 cdist's
matrix-product form, torch.Size slices, numpy(force=True), and scatter_reduce amin/amax on
integers and bools."""

import numpy as np
import pytest
import torch

import manygrad as mg


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# each: f(lib, z) -> a piecewise-linear function of z (its first derivative is a mask)
MASKED = [
    ("relu", lambda lib, z: lib.relu(z)),
    ("relu_inplace", lambda lib, z: lib.nn.functional.relu(z * 1, inplace=True)),
    ("leaky_relu", lambda lib, z: lib.nn.functional.leaky_relu(z, 0.2)),
    ("leaky_relu_", lambda lib, z: lib.nn.functional.leaky_relu(z * 1, 0.2, inplace=True)),
    ("hardtanh", lambda lib, z: lib.nn.functional.hardtanh(z, -0.5, 0.5)),
    ("relu6", lambda lib, z: lib.nn.ReLU6()(z * 3)),
    ("threshold", lambda lib, z: lib.nn.functional.threshold(z, 0.1, 2.0)),
    ("prelu", lambda lib, z: lib.nn.functional.prelu(z, lib.tensor([0.25]))),
    ("rrelu_eval", lambda lib, z: lib.nn.functional.rrelu(z, training=False)),
    ("hardshrink", lambda lib, z: lib.nn.functional.hardshrink(z, 0.3)),
    ("softshrink", lambda lib, z: lib.nn.functional.softshrink(z, 0.3)),
    ("abs", lambda lib, z: lib.abs(z)),
    ("max_pool1d", lambda lib, z: lib.nn.functional.max_pool1d(z.reshape(1, 2, 6), 2)),
    ("max_pool2d", lambda lib, z: lib.nn.functional.max_pool2d(z.reshape(1, 1, 4, 3), 2, 1)),
    ("max_pool_idx", lambda lib, z: lib.nn.functional.max_pool1d(z.reshape(1, 2, 6), 3, 1, 1,
                                                                 return_indices=True)[0]),
    ("adaptive_max", lambda lib, z: lib.nn.functional.adaptive_max_pool2d(z.reshape(1, 2, 3, 2),
                                                                          (2, 1))),
]  # fmt: skip


def _second_order(lib, act, device="cpu"):
    """d/d(x, w, b) of |dH/dx|^2 for H = sum(c * act(x @ w + b)): b and x reach it only
    through act's mask."""
    x = lib.tensor(_rand(6, 2, seed=7), device=device, requires_grad=True)
    w = lib.tensor(_rand(2, 2, seed=1), device=device, requires_grad=True)
    b = lib.tensor(_rand(2, seed=2), device=device, requires_grad=True)
    y = act(lib, x @ w + b)
    h = (y * lib.tensor(_rand(*y.shape, seed=3), device=device)).sum()
    (gx,) = lib.autograd.grad(h, x, create_graph=True)
    gs = lib.autograd.grad((gx**2).sum(), [x, w, b])
    return [gx.detach().cpu().numpy()] + [g.cpu().numpy() for g in gs]


@pytest.mark.parametrize("name,act", MASKED, ids=[m[0] for m in MASKED])
def test_double_backward_through_a_mask_gives_zeros_not_none(name, act):
    want = _second_order(torch, act)
    got = _second_order(mg, act)  # NOTE: raised "not used in the graph" for x and b before
    for g, t in zip(got, want):
        np.testing.assert_allclose(g, t, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "relu6", "abs", "max_pool2d"])
def test_double_backward_through_a_mask_on_every_device(name, device):
    act = dict(MASKED)[name]
    want = _second_order(torch, act)
    for g, t in zip(_second_order(mg, act, device), want):
        np.testing.assert_allclose(g, t, rtol=1e-5, atol=1e-6)


def test_third_order_through_relu_matches_pytorch():
    outs = []
    for lib in (torch, mg):
        x = lib.tensor(_rand(5, 3), requires_grad=True)
        w = lib.tensor(_rand(3, 3, seed=1), requires_grad=True)
        y = lib.tanh(lib.relu(x @ w)).sum()
        (g1,) = lib.autograd.grad(y, x, create_graph=True)
        (g2,) = lib.autograd.grad(g1.pow(2).sum(), x, create_graph=True)
        (g3,) = lib.autograd.grad(g2.sum(), w)
        outs.append((g1.detach().numpy(), g2.detach().numpy(), g3.numpy()))
    for g, t in zip(outs[1], outs[0]):
        np.testing.assert_allclose(g, t, rtol=1e-5, atol=1e-6)


def test_adamw_decays_a_bias_seen_only_through_a_relu_mask():
    """The Hamiltonian network's loss reads dH/dx only: with ReLU-type layers the biases get
    zero gradients, which AdamW still steps (weight decay), as PyTorch does."""
    params = []
    for lib in (torch, mg):
        net = lib.nn.Sequential(lib.nn.Linear(2, 8), lib.nn.LeakyReLU(), lib.nn.Linear(8, 1))
        with lib.no_grad():
            for i, p in enumerate(net.parameters()):
                p.copy_(lib.tensor(_rand(*p.shape, seed=i)))
        opt = lib.optim.AdamW(net.parameters(), lr=0.05, weight_decay=0.5)
        x = lib.tensor(_rand(16, 2, seed=9))
        for _ in range(3):
            xi = x.clone().requires_grad_(True)
            (dh,) = lib.autograd.grad(net(xi).sum(), xi, create_graph=True)
            loss = (dh - 1).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        params.append([p.detach().numpy().copy() for p in net.parameters()])
        assert net[0].bias.grad is not None and not net[0].bias.grad.abs().sum()
    for g, t in zip(params[1], params[0]):
        np.testing.assert_allclose(g, t, rtol=1e-5, atol=1e-6)


def test_relu6_keeps_its_input_as_pytorch_does():
    for lib in (torch, mg):
        x = lib.tensor(_rand(4), requires_grad=True)
        z = x * 2
        y = lib.nn.functional.relu6(z)
        z.add_(1)  # PyTorch's hardtanh saved z: backward refuses
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


# ---------------------------------------------------------------- cdist, matrix-product form

CDIST = [
    ((30, 3), (30, 3), None),  # more than 25 rows: PyTorch's matrix product
    ((5, 3), (40, 3), None),
    ((5, 3), (6, 3), "use_mm_for_euclid_dist"),
    ((5, 3), (6, 3), None),  # few rows: differences
    ((30, 3), (30, 3), "donot_use_mm_for_euclid_dist"),
    ((2, 30, 4), (30, 4), None),
    ((3, 1, 28, 2), (2, 7, 2), None),
]


@pytest.mark.parametrize("s1,s2,mode", CDIST)
def test_cdist_values_and_gradients_match_pytorch(s1, s2, mode):
    outs = []
    for lib in (torch, mg):
        a = lib.tensor(_rand(*s1), requires_grad=True)
        b = lib.tensor(_rand(*s2, seed=1), requires_grad=True)
        d = lib.cdist(a, b) if mode is None else lib.cdist(a, b, compute_mode=mode)
        (d * lib.tensor(_rand(*d.shape, seed=5))).sum().backward()
        outs.append((d.detach().numpy(), a.grad.numpy(), b.grad.numpy()))
    for g, t in zip(outs[1], outs[0]):
        np.testing.assert_allclose(g, t, rtol=2e-5, atol=1e-5)


def test_cdist_of_a_cloud_with_itself_has_pytorchs_rounding():
    """The matrix-product form leaves some self-distances above 0 (cancellation): PyTorch's
    values, which a radius graph or a Sinkhorn cost then sees."""
    x = _rand(30, 3)
    x[4] = x[7]  # a repeated point: distance 0 there, and a zero gradient
    outs = []
    for lib in (torch, mg):
        t = lib.tensor(x, requires_grad=True)
        d = lib.cdist(t, t)
        d.sum().backward()
        outs.append((d.detach().numpy(), t.grad.numpy()))
    (dt, gt), (dm, gm) = outs
    np.testing.assert_array_equal(np.diag(dm) > 0, np.diag(dt) > 0)
    assert dm[4, 7] == dt[4, 7] == 0
    np.testing.assert_allclose(dm, dt, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gm[[4, 7]], gt[[4, 7]], rtol=1e-5, atol=1e-5)


def test_cdist_matrix_product_form_differentiates_twice():
    outs = []
    for lib in (torch, mg):
        a = lib.tensor(_rand(30, 2), requires_grad=True)
        b = lib.tensor(_rand(27, 2, seed=1))
        (g,) = lib.autograd.grad(lib.cdist(a, b).pow(2).sum(), a, create_graph=True)
        (gg,) = lib.autograd.grad(g.pow(2).sum(), a)
        outs.append((g.detach().numpy(), gg.numpy()))
    for g, t in zip(outs[1], outs[0]):
        np.testing.assert_allclose(g, t, rtol=1e-4, atol=1e-4)


def test_cdist_rejects_an_unknown_compute_mode():
    for lib in (torch, mg):
        with pytest.raises(ValueError, match="not a valid value for compute_mode"):
            lib.cdist(lib.ones(2, 2), lib.ones(2, 2), compute_mode="mm")


def test_cdist_matrix_product_form_on_every_device(device):
    a = _rand(28, 3)
    want = torch.cdist(torch.tensor(a), torch.tensor(a)).numpy()
    got = mg.cdist(mg.tensor(a, device=device), mg.tensor(a, device=device))
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- small API differences


def test_size_slices_and_concatenations_stay_sizes():
    for lib in (torch, mg):
        s = lib.ones(2, 3, 4).shape
        assert isinstance(s[1:], lib.Size) and s[1:].numel() == 12
        assert isinstance(s + (5,), lib.Size) and isinstance((5,) + s, lib.Size)
        assert isinstance(s * 2, lib.Size) and tuple(2 * s) == (2, 3, 4) * 2
        assert s[::-1] == (4, 3, 2) and s[0] == 2 and not isinstance(s[0], tuple)
        with pytest.raises(TypeError):
            _ = s + [5]


def test_numpy_force_detaches():
    for lib in (torch, mg):
        t = lib.tensor([1.0, 2.0], requires_grad=True) * 2
        np.testing.assert_array_equal(t.numpy(force=True), [2.0, 4.0])
        with pytest.raises(RuntimeError):
            t.numpy()


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "int16", "int64", "float16"])
@pytest.mark.parametrize("reduce", ["amin", "amax"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_extremes_of_integers_and_bools(dtype, reduce, include_self):
    vals = {
        "bool": [True, False, False, True, True, False],
        "uint8": [0, 255, 3, 200, 1, 7],  # NOTE: -v wraps for unsigned types
        "int8": [-128, 127, 5, -3, 0, -128],  # and at a signed type's minimum
        "int16": [-32768, 5, 32767, -2, 9, 0],
        "int64": [5, -9, 3, 3, 0, -1],
        "float16": [0.5, -2.0, 65504, -65504, 1.0, 0.0],
    }[dtype]
    outs = []
    for lib in (torch, mg):
        dt = getattr(lib, dtype)
        base, src = lib.tensor(vals[:4], dtype=dt), lib.tensor(vals[::-1], dtype=dt)
        idx = lib.tensor([0, 0, 1, 1, 1, 3])
        outs.append(base.scatter_reduce(0, idx, src, reduce, include_self=include_self).numpy())
    np.testing.assert_array_equal(outs[1], outs[0])
