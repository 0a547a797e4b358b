"""nn.utils.weight_norm / spectral_norm (the hook-based forms) against PyTorch: names in the
state dict, outputs and gradients through training steps, removal, and misuse."""

import warnings

import numpy as np
import pytest
import torch

import manygrad as mg
from devicematrix import DEVICES

R = np.random.default_rng(0)
LAYERS = [
    ("Linear", (5, 3), (4, 5)),
    ("Conv1d", (4, 6, 3), (2, 4, 7)),
    ("Conv2d", (3, 4, 3), (2, 3, 6, 6)),
    ("ConvTranspose2d", (3, 4, 3), (2, 3, 5, 5)),
]


def _pair(kind, args, device):
    m, t = getattr(mg.nn, kind)(*args), getattr(torch.nn, kind)(*args)
    with torch.no_grad():
        for (_, p), (_, q) in zip(m.named_parameters(), t.named_parameters()):
            q.copy_(torch.tensor(p.detach().numpy()))
    return m.to(device), t


def _train(m, t, shape, device, steps=3):
    om, ot = mg.optim.SGD(m.parameters(), lr=0.05), torch.optim.SGD(t.parameters(), lr=0.05)
    for _ in range(steps):
        x = R.standard_normal(shape).astype(np.float32)
        ym, yt = m(mg.tensor(x, device=device)), t(torch.tensor(x))
        np.testing.assert_allclose(
            ym.detach().cpu().numpy(), yt.detach().numpy(), rtol=2e-5, atol=2e-5
        )
        om.zero_grad()
        ot.zero_grad()
        (ym**2).sum().backward()
        (yt**2).sum().backward()
        om.step()
        ot.step()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind,args,shape", LAYERS, ids=[x[0] for x in LAYERS])
@pytest.mark.parametrize("dim", [0, None])
def test_weight_norm_matches_torch(device, kind, args, shape, dim):
    m, t = _pair(kind, args, device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        t = torch.nn.utils.weight_norm(t, dim=dim)
    m = mg.nn.utils.weight_norm(m, dim=dim)
    assert sorted(m.state_dict()) == sorted(t.state_dict())
    _train(m, t, shape, device)
    np.testing.assert_allclose(m.weight_v.detach().cpu().numpy(), t.weight_v.detach().numpy(),
                               rtol=2e-5, atol=2e-5)  # fmt: skip
    mg.nn.utils.remove_weight_norm(m)
    torch.nn.utils.remove_weight_norm(t)
    assert sorted(m.state_dict()) == sorted(t.state_dict())
    np.testing.assert_allclose(m.weight.detach().cpu().numpy(), t.weight.detach().numpy(),
                               rtol=2e-5, atol=2e-5)  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind,args,shape", LAYERS, ids=[x[0] for x in LAYERS])
def test_spectral_norm_matches_torch(device, kind, args, shape):
    m, t = _pair(kind, args, device)
    t = torch.nn.utils.spectral_norm(t, n_power_iterations=2)
    m = mg.nn.utils.spectral_norm(m, n_power_iterations=2)
    assert sorted(m.state_dict()) == sorted(t.state_dict())
    m.weight_u.copy_(mg.tensor(t.weight_u.numpy(), device=device))  # NOTE: random starts
    m.weight_v.copy_(mg.tensor(t.weight_v.numpy(), device=device))
    _train(m, t, shape, device)
    np.testing.assert_allclose(m.weight_u.cpu().numpy(), t.weight_u.numpy(), rtol=2e-5, atol=2e-5)
    m.eval()
    t.eval()
    _train(m, t, shape, device, steps=1)  # eval: no power iteration, same values
    mg.nn.utils.remove_spectral_norm(m)
    torch.nn.utils.remove_spectral_norm(t)
    assert sorted(m.state_dict()) == sorted(t.state_dict())


def test_misuse_is_refused():
    m = mg.nn.utils.weight_norm(mg.nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="two weight_norm hooks"):
        mg.nn.utils.weight_norm(m)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        mg.nn.utils.remove_spectral_norm(mg.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="n_power_iterations"):
        mg.nn.utils.spectral_norm(mg.nn.Linear(2, 2), n_power_iterations=0)
