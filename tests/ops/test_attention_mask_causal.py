"""scaled_dot_product_attention with both an attn_mask and is_causal=True: PyTorch applies
both (the causal mask on top of the given one); values and gradients against PyTorch."""

import numpy as np
import pytest
import torch

import manygrad as mg


@pytest.mark.parametrize("kind", ["float", "bool"])
def test_mask_and_causal_together(device, kind):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 5, 8)).astype(np.float32) for _ in range(3))
    if kind == "float":
        m = rng.standard_normal((5, 5)).astype(np.float32)
        m[1, 0] = -np.inf
    else:
        m = rng.random((5, 5)) > 0.3
        m[:, 0] = True  # every query keeps a key
    outs, grads = [], []
    for lib, dev in ((mg, device), (torch, "cpu")):
        ts = [lib.tensor(a, requires_grad=True) for a in (q, k, v)]
        if lib is mg:
            ts = [t.to(dev).detach().requires_grad_() for t in ts]
        mask = lib.tensor(m) if lib is torch else mg.tensor(m, device=dev)
        y = lib.nn.functional.scaled_dot_product_attention(*ts, attn_mask=mask, is_causal=True)
        y.backward(lib.ones_like(y) if lib is torch else mg.ones_like(y))
        outs.append(y.detach().cpu().numpy())
        grads.append([t.grad.cpu().numpy() for t in ts])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_unary_plus_of_bool_raises_like_torch():
    with pytest.raises(RuntimeError):
        +torch.tensor([True])
    with pytest.raises(RuntimeError):
        +mg.tensor([True])
    x = mg.tensor([1.0, -2.0])
    assert (+x) is x
