"""F.linear_cross_entropy / nn.LinearCrossEntropyLoss against PyTorch: the reference and
the chunked paths give PyTorch's losses and gradients (weights, ignore_index, label
smoothing, every reduction), on every device."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(0)

KWARGS = [{}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.1},
          {"ignore_index": 3}, {"weight": True, "label_smoothing": 0.2, "ignore_index": 1}]  # fmt: skip


@pytest.mark.parametrize("kw", KWARGS, ids=[str(i) for i in range(len(KWARGS))])
@pytest.mark.parametrize("chunked", [False, True])
def test_equals_pytorch(kw, chunked, device):
    n, d, c = 13, 6, 7
    x, w, b = RNG.standard_normal((n, d)), RNG.standard_normal((c, d)), RNG.standard_normal(c)
    y = RNG.integers(0, c, n)
    y[:3] = [3, 1, 1]
    cls_w = RNG.uniform(0.5, 2, c)
    kw = dict(kw)
    use_w = kw.pop("weight", False)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    xm, wm, bm = (mg.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
    opt_t = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=4) if chunked else None
    opt_m = mg.nn.LinearCrossEntropyOptions(batch_chunk_size=4) if chunked else None
    lt = torch.nn.functional.linear_cross_entropy(
        xt, wt, torch.tensor(y), linear_bias=bt, options=opt_t,
        weight=torch.tensor(cls_w) if use_w else None, **kw)  # fmt: skip
    lm = mg.nn.functional.linear_cross_entropy(
        xm, wm, mg.tensor(y, device=device), linear_bias=bm, options=opt_m,
        weight=mg.tensor(cls_w, device=device) if use_w else None, **kw)  # fmt: skip
    np.testing.assert_allclose(lm.detach().cpu().numpy(), lt.detach().numpy(), rtol=1e-10)
    lt.sum().backward()
    lm.sum().backward()
    for a, b_ in ((xm, xt), (wm, wt), (bm, bt)):
        np.testing.assert_allclose(a.grad.cpu().numpy(), b_.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_module_matches_pytorch_names_and_values():
    torch.manual_seed(0)
    t = torch.nn.LinearCrossEntropyLoss(8, 5, bias=True).double()
    m = mg.nn.LinearCrossEntropyLoss(8, 5, bias=True).to(mg.float64)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    m.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x, y = RNG.standard_normal((6, 8)), RNG.integers(0, 5, 6)
    np.testing.assert_allclose(m(mg.tensor(x), mg.tensor(y)).item(),
                               t(torch.tensor(x), torch.tensor(y)).item(), rtol=1e-12)  # fmt: skip
    with pytest.raises(NotImplementedError, match="out_features"):
        mg.nn.LinearCrossEntropyLoss(8, 5, out_features=(2,))
