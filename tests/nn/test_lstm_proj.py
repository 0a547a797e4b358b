"""LSTM(proj_size=P): PyTorch's parameter names and shapes, outputs, final states and
gradients, for stacked, bidirectional, batch-first and packed inputs, on every device."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


def _pair(**kw):
    torch.manual_seed(0)
    t = torch.nn.LSTM(4, 8, proj_size=3, **kw).double()
    m = mg.nn.LSTM(4, 8, proj_size=3, **kw).to(mg.float64)
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    return m, t


@pytest.mark.parametrize("kw", [{}, {"num_layers": 2, "bidirectional": True},
                                {"num_layers": 2, "batch_first": True}])  # fmt: skip
def test_projected_lstm_equals_pytorch(kw, device):
    m, t = _pair(**kw)
    m.to(device)
    x = np.random.default_rng(0).standard_normal((5, 2, 4))
    xt, xm = torch.tensor(x, requires_grad=True), mg.tensor(x, device=device, requires_grad=True)
    ot, (ht, ct) = t(xt)
    om, (hm, cm) = m(xm)
    for a, b in ((om, ot), (hm, ht), (cm, ct)):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), atol=1e-12)
    (ot.sum() + ct.sum()).backward()
    (om.sum() + cm.sum()).backward()
    np.testing.assert_allclose(xm.grad.cpu().numpy(), xt.grad.numpy(), atol=1e-12)
    for a, b in zip(m.parameters(), t.parameters()):
        np.testing.assert_allclose(a.grad.cpu().numpy(), b.grad.numpy(), atol=1e-12)


def test_packed_input_initial_states_and_errors():
    m, t = _pair()
    x = np.random.default_rng(1).standard_normal((5, 3, 4))
    lens = [5, 3, 2]
    ot, (ht, _) = t(torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), lens))
    om, (hm, _) = m(mg.nn.utils.rnn.pack_padded_sequence(mg.tensor(x), lens))
    np.testing.assert_allclose(om.data.detach().numpy(), ot.data.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(hm.detach().numpy(), ht.detach().numpy(), atol=1e-12)
    h0, c0 = np.ones((1, 3, 3)), np.ones((1, 3, 8))
    ot, _ = t(torch.tensor(x), (torch.tensor(h0), torch.tensor(c0)))
    om, _ = m(mg.tensor(x), (mg.tensor(h0), mg.tensor(c0)))
    np.testing.assert_allclose(om.detach().numpy(), ot.detach().numpy(), atol=1e-12)
    with pytest.raises(mg.ManygradError, match=r"h_0 of shape \(1, 3, 3\)"):
        m(mg.tensor(x), (mg.tensor(c0), mg.tensor(c0)))
    with pytest.raises(ValueError, match="smaller than hidden_size"):
        mg.nn.LSTM(4, 8, proj_size=8)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        mg.nn.GRU(4, 8, proj_size=2)
    assert "proj_size=3" in repr(m)
