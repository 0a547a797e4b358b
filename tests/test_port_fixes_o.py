"""Differences from PyTorch that the pruning, Tacotron, RNN-T and DETR port scripts
(tests/ports/scripts) and the probes around them led to, each compared with PyTorch:
``logcumsumexp`` combines every prefix exactly (entries far below the dim's maximum no
longer underflow to -inf, and their gradients are finite), with PyTorch's gradients and
gradients of gradients, -inf entries included."""

import numpy as np
import pytest
import torch

import manygrad as mg

LOGCUMSUMEXP_CASES = {
    "far_below_max": ([[-1e4, 0.0, -1e4, -3e4, 1.0]], 1),
    "ascending_log_probs": ([[-3200.0, -1600.0, -800.0, -400.0, -200.0, 0.0]], 1),
    "neg_inf_prefix": ([[-np.inf, -np.inf, 0.5, -1e4, 2.0], [3.0, -np.inf, 1.0, -2.0, 0.0]], 1),
    "dim0_odd_length": (np.linspace(-50, 40, 21).reshape(7, 3) ** 2 / -10, 0),
}


@pytest.mark.parametrize("name", sorted(LOGCUMSUMEXP_CASES))
def test_logcumsumexp_is_exact_per_prefix(name, device):
    values, dim = LOGCUMSUMEXP_CASES[name]
    x = np.asarray(values, np.float32)
    g = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    want_x = torch.tensor(x, requires_grad=True)
    want = torch.logcumsumexp(want_x, dim)
    (want_g,) = torch.autograd.grad(want, want_x, torch.tensor(g), create_graph=True)
    (want_gg,) = torch.autograd.grad((want_g.nan_to_num() * torch.tensor(g)).sum(), want_x)

    got_x = mg.tensor(x, device=device, requires_grad=True)
    got = mg.logcumsumexp(got_x, dim)
    (got_g,) = mg.autograd.grad(got, got_x, mg.tensor(g, device=device), create_graph=True)
    (got_gg,) = mg.autograd.grad((got_g.nan_to_num() * mg.tensor(g, device=device)).sum(), got_x)

    for w, h in [(want, got), (want_g, got_g), (want_gg, got_gg)]:
        np.testing.assert_allclose(
            h.detach().cpu().numpy(), w.detach().numpy(), rtol=1e-5, atol=1e-5, equal_nan=True
        )
    assert np.isfinite(got.detach().cpu().numpy()[..., -1]).all()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_logcumsumexp_dtypes_keep_far_entries(dtype):
    x = np.array([-1e4, 0.0, 1.0, -5.0], np.float32)
    want = torch.logcumsumexp(torch.tensor(x).to(getattr(torch, dtype)), 0)
    got = mg.logcumsumexp(mg.tensor(x).to(getattr(mg, dtype)), 0)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=1e-2)
