"""Random sampling: Generator, bernoulli, multinomial, normal, poisson; statistics checked
on large samples, reproducibility with seeds, on the CPU and the fake GPU."""

import numpy as np
import pytest

import manygrad as mg

DEVICES = ["cpu", "fakegpu"]


def test_generator_api():
    g = mg.Generator()
    assert g.manual_seed(7) is g and g.initial_seed() == 7
    a = mg.rand(5, generator=g)
    st = g.get_state()
    b = mg.rand(5, generator=g)
    g.set_state(st)
    assert mg.rand(5, generator=g).tolist() == b.tolist()
    g.manual_seed(7)
    assert mg.rand(5, generator=g).tolist() == a.tolist()
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s
    g2 = mg.Generator().manual_seed(3)
    parts = mg.data.random_split(range(10), [5, 5], generator=g2)
    g2.manual_seed(3)
    again = mg.data.random_split(range(10), [5, 5], generator=g2)
    assert list(parts[0]) == list(again[0])


def test_rng_state_roundtrip():
    mg.manual_seed(0)
    st = mg.get_rng_state()
    a = mg.rand(4)
    mg.set_rng_state(st)
    assert mg.rand(4).tolist() == a.tolist()


@pytest.mark.parametrize("device", DEVICES)
def test_bernoulli_statistics(device):
    p = mg.full((20000,), 0.3, device=device)
    x = mg.bernoulli(p, generator=mg.Generator(device).manual_seed(0))
    assert x.dtype == mg.float32 and str(x.device).startswith(device)
    assert abs(x.mean().item() - 0.3) < 0.02
    assert set(np.unique(x.cpu().numpy())) <= {0.0, 1.0}
    assert mg.bernoulli(mg.zeros(3, device=device), 1.0).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("device", DEVICES)
def test_multinomial(device):
    w = mg.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 0.0]], device=device)
    mg.manual_seed(1)
    s = mg.multinomial(w, 8000, replacement=True)
    assert s.shape == (2, 8000) and s.dtype == mg.int64
    c0 = np.bincount(s[0].cpu().numpy(), minlength=3) / 8000
    np.testing.assert_allclose(c0, [0.0, 0.25, 0.75], atol=0.03)
    assert not (s[1].cpu().numpy() == 2).any()
    nr = mg.multinomial(w, 2)
    for row, allowed in zip(nr.cpu().numpy(), ({1, 2}, {0, 1})):
        assert set(row) == allowed
    one = mg.multinomial(mg.tensor([1.0, 0.0, 1.0], device=device), 1)
    assert one.shape == (1,) and one.item() in (0, 2)
    with pytest.raises(ValueError, match="without replacement"):
        mg.multinomial(w, 4)


@pytest.mark.parametrize("device", DEVICES)
def test_normal_forms_and_gradient(device):
    mg.manual_seed(2)
    m = mg.full((4000,), 3.0, device=device, requires_grad=True)
    s = mg.full((4000,), 2.0, device=device, requires_grad=True)
    x = mg.normal(m, s)
    assert abs(x.mean().item() - 3) < 0.15 and abs(x.std().item() - 2) < 0.15
    x.sum().backward()
    assert m.grad.tolist() == [1.0] * 4000
    eps = (x.detach() - 3) / 2
    np.testing.assert_allclose(s.grad.cpu().numpy(), eps.cpu().numpy(), rtol=1e-5, atol=1e-6)
    y = mg.normal(0.0, 1.0, size=(2, 3), device=device)
    assert y.shape == (2, 3)
    z = mg.normal(mg.zeros(3, device=device), 0.5)
    assert z.shape == (3,)


@pytest.mark.parametrize("device", DEVICES)
def test_poisson(device):
    mg.manual_seed(3)
    lam = mg.full((20000,), 4.0, device=device)
    x = mg.poisson(lam)
    assert x.dtype == mg.float32 and abs(x.mean().item() - 4) < 0.1
    assert (x.cpu().numpy() == np.round(x.cpu().numpy())).all()


def test_generator_drives_randperm_randint_randn():
    g = mg.Generator()
    outs = []
    for _ in range(2):
        g.manual_seed(11)
        outs.append((mg.randperm(6, generator=g).tolist(), mg.randint(0, 9, (4,), generator=g)
                     .tolist(), mg.randn(3, generator=g).tolist()))  # fmt: skip
    assert outs[0] == outs[1] and sorted(outs[0][0]) == list(range(6))


def test_default_generator_is_the_global_cpu_stream():
    g = mg.default_generator
    assert isinstance(g, mg.Generator)
    mg.manual_seed(21)
    a = mg.rand(3)
    g.manual_seed(21)
    assert mg.rand(3).tolist() == a.tolist()
    assert g.initial_seed() == 21
    parts = mg.data.random_split(range(6), [3, 3], generator=g)
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(6))
