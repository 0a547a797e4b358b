"""The ``meta`` device (shapes and dtypes, no data) and ``with mg.device(...)`` blocks,
against PyTorch's behaviour."""

import resource

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn as nn

torch = pytest.importorskip("torch")


def test_factories_make_meta_tensors_without_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    big = [mg.ones(8192, 8192, device="meta") for _ in range(8)]  # 2 GiB if it had data
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    assert all(t.is_meta and t.device.type == "meta" for t in big)
    assert big[0].shape == (8192, 8192) and big[0].dtype is mg.float32
    assert not mg.ones(2).is_meta
    assert mg.arange(5, device="meta").shape == (5,)
    assert mg.linspace(0, 1, 7, device="meta").shape == (7,)
    assert mg.eye(3, device="meta").is_meta
    assert mg.full((2, 3), 4, device="meta").dtype is mg.int64
    assert mg.randn(3, 4, device="meta").is_meta
    assert mg.tensor([1, 2], device="meta").shape == (2,)
    m = mg.empty(2, 3, device="meta")
    assert mg.empty_like(m).is_meta and m.new_zeros(4).is_meta
    assert mg.ones(3).to("meta").is_meta


def test_meta_draws_leave_the_random_stream_alone():
    mg.manual_seed(0)
    a = mg.rand(3)
    mg.manual_seed(0)
    mg.randn(1000, device="meta")
    mg.empty(5, device="meta").uniform_()
    assert mg.equal(mg.rand(3), a)


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_repr(lib):
    t = torch if lib == "torch" else mg
    m = t.empty(2, 3, device="meta")
    assert repr(m) == "tensor(..., device='meta', size=(2, 3))"
    h = t.empty(2, 3, device="meta", dtype=t.float16)
    assert repr(h) == f"tensor(..., device='meta', size=(2, 3), dtype={t.float16})"
    p = (torch.nn if lib == "torch" else nn).Parameter(m)
    assert repr(p).endswith("tensor(..., device='meta', size=(2, 3), requires_grad=True)")


def test_reads_are_refused_as_in_pytorch():
    m = mg.empty(2, 3, device="meta")
    with pytest.raises(NotImplementedError, match="Cannot copy out of meta tensor"):
        m.cpu()
    with pytest.raises(NotImplementedError, match="Cannot copy out of meta tensor"):
        m.tolist()
    with pytest.raises(RuntimeError, match=r"item\(\) cannot be called on meta tensors"):
        m.sum().item()
    with pytest.raises(RuntimeError, match="meta"):
        bool(m[0, 0])
    with pytest.raises(RuntimeError, match="meta"):
        float(m[0, 0])
    with pytest.raises(TypeError, match="meta"):
        m.numpy()
    with pytest.raises(RuntimeError, match="one device"):
        m + mg.ones(2, 3)
    assert (m + mg.tensor(1.0)).is_meta  # a 0-d CPU tensor goes along, as in PyTorch


def test_ops_give_meta_results_of_pytorchs_shapes_and_dtypes():
    def run(t):
        nn_ = t.nn
        with t.device("meta"):
            net = nn_.Sequential(
                nn_.Conv2d(3, 8, 3), nn_.BatchNorm2d(8), nn_.ReLU(), nn_.Flatten(),
                nn_.Linear(8 * 6 * 6, 10),
            )  # fmt: skip
            out = [net(t.randn(2, 3, 8, 8))]
            q = t.randn(2, 5, 16)
            out.append(nn_.MultiheadAttention(16, 2, batch_first=True)(q, q, q)[0])
            out.append(nn_.TransformerEncoderLayer(16, 2, 32, batch_first=True)(q))
            out.append(nn_.Embedding(100, 16)(t.zeros(3, 4, dtype=t.long)))
            out.append((t.randn(4, 4) @ t.randn(4, 2)).softmax(-1).log())
            out.append(t.randn(3, 4).half().sum(0))
            out.append(t.randn(3, 4) > 0)
        return [(tuple(o.shape), str(o.dtype).split(".")[1], o.device.type) for o in out]

    assert run(mg) == run(torch)


def test_backward_on_meta_gives_meta_gradients():
    with mg.device("meta"):
        lin = nn.Linear(4, 3)
        lin(mg.randn(5, 4)).sum().backward()
    assert lin.weight.grad.is_meta and lin.weight.grad.shape == (3, 4)
    assert lin.bias.grad.is_meta


def test_in_place_ops_on_meta_cost_nothing_and_keep_meta():
    w = mg.empty(4096, 4096, device="meta")
    nn.init.kaiming_uniform_(w, a=5**0.5)
    nn.init.normal_(w)
    w.add_(1).mul_(2).zero_()
    w.copy_(mg.empty(4096, 4096, device="meta"))
    assert w.is_meta and not any(w._data.strides)


def test_model_on_meta_then_to_empty_or_assign():
    torch.manual_seed(0)
    ref = torch.nn.Linear(4, 3)
    sd = {k: mg.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    want = ref(torch.from_numpy(x)).detach().numpy()

    with mg.device("meta"):
        a = nn.Linear(4, 3)
    assert a.weight.is_meta
    with pytest.raises(NotImplementedError, match="to_empty"):
        a.to("cpu")
    a.to_empty(device="cpu")
    assert a.weight.device.type == "cpu" and isinstance(a.weight, nn.Parameter)
    a.load_state_dict(sd)
    np.testing.assert_allclose(a(mg.tensor(x)).detach().numpy(), want, rtol=1e-6)

    with mg.device("meta"):
        b = nn.Linear(4, 3)
    b.load_state_dict(sd, assign=True)
    assert isinstance(b.weight, nn.Parameter) and b.weight.requires_grad
    np.testing.assert_allclose(b(mg.tensor(x)).detach().numpy(), want, rtol=1e-6)


def test_device_blocks_nest_and_restore():
    assert mg.get_default_device().type == "cpu"
    with mg.device("meta") as d:
        assert d.type == "meta"
        assert mg.zeros(1).is_meta and mg.tensor([1.0]).is_meta
        assert nn.Linear(2, 2).weight.is_meta
        with mg.device("cpu"):
            assert not mg.zeros(1).is_meta
        assert mg.zeros(1).is_meta
    assert not mg.zeros(1).is_meta and mg.get_default_device().type == "cpu"
    with pytest.raises(ValueError), mg.device("meta"):
        raise ValueError
    assert mg.get_default_device().type == "cpu"  # restored after an exception too


def test_bad_meta_device_names():
    with pytest.raises(RuntimeError, match="no index"):
        mg.device("meta:0")
    with pytest.raises(RuntimeError, match="'meta'"):
        mg.device("metal")


@pytest.mark.parametrize(
    "op",
    [
        lambda t, m: t.nonzero(m),
        lambda t, m: t.argwhere(m),
        lambda t, m: t.masked_select(m, m > 0),
        lambda t, m: m[m > 0],
        lambda t, m: t.unique(m),
        lambda t, m: t.bincount(t.ones(3, dtype=t.long, device="meta")),
    ],
)
@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_ops_whose_shape_depends_on_values_refuse(lib, op):
    t = torch if lib == "torch" else mg
    with pytest.raises(NotImplementedError):
        op(t, t.empty(4, 3, device="meta"))
    assert tuple(t.empty(4, 3, device="meta")[t.tensor([0, 2])].shape) == (2, 3)
