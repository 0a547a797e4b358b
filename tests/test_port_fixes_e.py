"""Differences from PyTorch that the T5 relative-bias, ALiBi sliding-window, RWKV, speculative
decoding and CTC beam-search port scripts (tests/ports/scripts) led to, each compared with
PyTorch."""

import numpy as np
import pytest
import torch

import manygrad as mg

_LOGITS = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
_WEIGHT = np.array([1.0, 2.0, 0.5, 1.0, 3.0], np.float32)


def _class_loss(lib, name, target, create_graph=False, **kw):
    x = lib.tensor(_LOGITS, requires_grad=True)
    if "weight" in kw:
        kw["weight"] = lib.tensor(kw["weight"])
    loss = getattr(lib.nn.functional, name)(x, lib.tensor(target), **kw)
    (grad,) = lib.autograd.grad(loss, x, create_graph=create_graph)
    return loss.detach().numpy(), grad.detach().numpy()


@pytest.mark.parametrize(
    "name,kw",
    [
        ("cross_entropy", {"label_smoothing": 0.1}),
        ("cross_entropy", {"weight": _WEIGHT}),
        ("cross_entropy", {"weight": _WEIGHT, "label_smoothing": 0.2}),
        ("cross_entropy", {"label_smoothing": 0.1, "reduction": "sum"}),
        ("nll_loss", {}),
        ("nll_loss", {"weight": _WEIGHT}),
    ],  # fmt: skip
)
@pytest.mark.parametrize("target", [[-100] * 4, [1, -100, 3, -100]])
def test_class_loss_ignored_targets_get_zero_gradient(name, kw, target):
    # a batch of padding only (every label -100): the mean is 0/0 = NaN, the gradient 0
    want = _class_loss(torch, name, target, **dict(kw))
    got = _class_loss(mg, name, target, **dict(kw))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isfinite(got[1]).all()


@pytest.mark.parametrize("kw", [{"label_smoothing": 0.1}, {"weight": _WEIGHT}])
def test_class_loss_ignored_targets_zero_gradient_with_create_graph(kw):
    want = _class_loss(torch, "cross_entropy", [-100] * 4, create_graph=True, **dict(kw))
    got = _class_loss(mg, "cross_entropy", [-100] * 4, create_graph=True, **dict(kw))
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
    assert np.isfinite(got[1]).all()


@pytest.mark.parametrize(
    "exponent",
    [
        lambda lib: 0,
        lambda lib: 0.0,
        lambda lib: lib.tensor(0.0),
        lambda lib: lib.zeros(3),
        lambda lib: lib.tensor([0.0, 1.0, 2.0]),
        lambda lib: lib.tensor([0, 1, 2]),
        lambda lib: lib.arange(3.0)[:, None],
    ],  # fmt: skip
)
def test_pow_gradient_is_zero_where_the_exponent_is_zero(exponent):
    # polynomial features x ** arange(n) at x == 0: 0 * 0 ** -1 is NaN unless masked
    grads = []
    for lib in (torch, mg):
        x = lib.tensor([0.0, 1.0, 2.0], requires_grad=True)
        w = lib.tensor([[1.0, -2.0, 0.5]])
        ((x ** exponent(lib)) * w).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)
    assert np.isfinite(grads[1]).all()


@pytest.mark.parametrize("exponent", [0, 0.0, 2])
def test_pow_double_backward_at_zero_exponent(exponent):
    out = []
    for lib in (torch, mg):
        x = lib.tensor([0.0, 1.0, 2.0], requires_grad=True)
        (g,) = lib.autograd.grad((x**exponent).sum(), x, create_graph=True)
        gg = lib.autograd.grad(g.sum(), x)[0].numpy() if g.requires_grad else None
        out.append((g.detach().numpy(), g.requires_grad, gg))
    np.testing.assert_allclose(out[1][0], out[0][0])
    assert out[1][1] == out[0][1]
    if out[0][2] is not None:
        np.testing.assert_allclose(out[1][2], out[0][2])


def test_pow_complex_gradient_at_zero_exponent():
    grads = []
    for lib in (torch, mg):
        z = lib.tensor([0j, 1 + 1j], requires_grad=True)
        (z**0).abs().sum().backward()
        grads.append(z.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0])


@pytest.mark.parametrize(
    "probs",
    [
        [-1.0, 1.0, 0.0],
        [float("inf"), 1.0, 0.0],
        [float("nan"), 1.0, 0.0],
        [0.0, 0.0, 0.0],
        [[0.2, 0.8, 0.0], [0.0, 0.0, 0.0]],
    ],  # fmt: skip
)
@pytest.mark.parametrize("replacement", [False, True])
def test_multinomial_refuses_invalid_probabilities_as_pytorch(probs, replacement):
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor(probs), 1, replacement)
    with pytest.raises(RuntimeError, match="multinomial"):
        mg.multinomial(mg.tensor(probs), 1, replacement)


def test_multinomial_valid_rows_still_draw():
    probs = mg.softmax(mg.tensor([[1.0, float("-inf"), 2.0], [0.0, 0.0, 0.0]]), -1)
    draws = mg.multinomial(probs, 4, replacement=True)
    assert draws.shape == (2, 4) and not (draws[0] == 1).any()
    assert mg.multinomial(mg.tensor([0.0, 1.0, 0.0]), 1).tolist() == [1]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "pad",
    [(1, -1), (-2, 1), (2, -1), (-1, -1), (-4, 0), (1, -4), (-4, 1), (0, 4), (1, -1, -1, 2)],
)
def test_pad_negative_pads_crop_in_every_mode(mode, pad):
    # reflect and replicate pad, then crop; circular crops, then wraps the entries kept
    shape = (2, 4, 5) if len(pad) == 2 else (1, 2, 4, 5)  # PyTorch's (N,) C, (H,) W forms
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = []
    for lib in (torch, mg):
        t = lib.tensor(x, requires_grad=True)
        y = lib.nn.functional.pad(t, pad, mode=mode)
        (y * lib.arange(float(y.numel())).view(y.shape)).sum().backward()
        out.append((y.detach().numpy(), t.grad.numpy()))
    for g, w in zip(out[1], out[0]):
        np.testing.assert_allclose(g, w, rtol=1e-6)


@pytest.mark.parametrize("mode,pad", [("replicate", (-5, 0)), ("reflect", (-3, -2))])
def test_pad_cropping_a_dim_away_is_refused(mode, pad):
    with pytest.raises(RuntimeError):
        torch.nn.functional.pad(torch.zeros(1, 1, 5), pad, mode=mode)
    with pytest.raises(RuntimeError, match="pad: .*crops too much"):
        mg.nn.functional.pad(mg.zeros(1, 1, 5), pad, mode=mode)
