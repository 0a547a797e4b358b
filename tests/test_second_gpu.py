"""Work on a GPU that is not the current one (``cuda:1`` while CuPy's current GPU is 0).

CuPy allocates every new array, and runs every kernel, on the *current* GPU; without peer
access a kernel given another GPU's array fails. ``fakegpu:1`` reproduces that (its arrays
refuse kernels while ``fakegpu`` is current), so these tests catch code that creates
arrays or runs kernels outside a device scope. The op tables also run on ``fakegpu:1``
(tests/devicematrix.py).
"""

import numpy as np
import pytest

import manygrad as mg
from manygrad import backend, fakegpu
from manygrad.errors import DeviceError

DEV = "fakegpu:1"


def test_second_fake_gpu_refuses_kernels_from_the_current_one():
    x = mg.ones(3, device=DEV)
    assert x.device == mg.device(DEV) and str(x.device) == DEV
    assert fakegpu.current() == 0
    with pytest.raises(ValueError, match="Peer access is unavailable"):
        x._data + 1  # a kernel while fakegpu (0) is current
    with backend.device_scope(x.device):
        assert (x._data + 1).get().tolist() == [2.0, 2.0, 2.0]
    assert fakegpu.current() == 0
    with pytest.raises(DeviceError, match="fake GPUs"):
        mg.device("fakegpu:2")


def test_moves_between_gpus_and_mixed_gpu_errors():
    a = mg.arange(4.0, device="fakegpu")
    b = a.to(DEV)
    assert b.device == mg.device(DEV) and b.cpu().tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(DeviceError, match=r"fakegpu.*fakegpu:1"):
        a + b
    c = mg.tensor(b)  # a copy stays on its GPU
    assert c.device == b.device and c.cpu().tolist() == b.cpu().tolist()


def test_scalar_where_sign_and_bfloat16_on_the_second_gpu():
    x = mg.tensor([-2.0, 0.0, 3.0], device=DEV)
    assert mg.where(x > 0, 1.0, -1.0).cpu().tolist() == [-1.0, -1.0, 1.0]
    assert x.sign().cpu().tolist() == [-1.0, 0.0, 1.0]
    assert mg.isfinite(x / 0).cpu().tolist() == [False, False, False]
    y = x.bfloat16() * 2.0
    assert y.dtype is mg.bfloat16 and y.device == x.device
    assert y.float().cpu().tolist() == [-4.0, 0.0, 6.0]


def test_backward_and_optimizers_keep_everything_on_the_second_gpu():
    mg.manual_seed(0)
    model = mg.nn.Sequential(
        mg.nn.Linear(6, 8), mg.nn.ReLU(), mg.nn.BatchNorm1d(8), mg.nn.Dropout(0.1),
        mg.nn.Linear(8, 3),
    ).to(DEV)  # fmt: skip
    ref = mg.nn.Sequential(
        mg.nn.Linear(6, 8), mg.nn.ReLU(), mg.nn.BatchNorm1d(8), mg.nn.Identity(),
        mg.nn.Linear(8, 3),
    )  # fmt: skip
    ref.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    model[3].p = 0.0  # dropout off, to compare with the CPU
    # 16 rows: every hidden unit is positive on several of them, so no gradient is pure
    # rounding noise (which Adam would blow up to a full step)
    x = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32)
    t = np.arange(16) % 3
    for opt_cls, kw in [(mg.optim.SGD, dict(lr=0.1, momentum=0.9)), (mg.optim.AdamW, {})]:
        opt, opt_ref = opt_cls(model.parameters(), **kw), opt_cls(ref.parameters(), **kw)
        scaler = mg.amp.GradScaler(DEV, init_scale=256.0)
        for _ in range(2):
            loss = mg.nn.functional.cross_entropy(
                model(mg.tensor(x, device=DEV)), mg.tensor(t, device=DEV)
            )
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=False)
            loss_ref = mg.nn.functional.cross_entropy(ref(mg.tensor(x)), mg.tensor(t))
            loss_ref.backward()
            opt_ref.step()
            opt_ref.zero_grad()
            np.testing.assert_allclose(loss.item(), loss_ref.item(), rtol=1e-5)
    for p in model.parameters():
        assert p.device == mg.device(DEV) and p.grad.device == mg.device(DEV)
    for st in opt.state.values():
        # NOTE: the step count stays a CPU tensor, as PyTorch's (non-capturable, non-fused)
        assert st["step"].device == mg.device("cpu") and st["step"].ndim == 0
        assert all(v.device == mg.device(DEV) for k, v in st.items()
                   if isinstance(v, mg.Tensor) and k != "step")  # fmt: skip
    for (k, v), (_, w) in zip(model.state_dict().items(), ref.state_dict().items()):
        np.testing.assert_allclose(v.cpu().numpy(), w.numpy(), rtol=1e-4, atol=1e-6, err_msg=k)
    model.half()  # a cast on the second GPU
    assert all(p.dtype == mg.float16 and p.device == mg.device(DEV) for p in model.parameters())


def test_fit_on_the_second_gpu():
    from manygrad.datasets import ArrayData, load_digits

    x, y = load_digits("train")
    xt, yt = load_digits("test")
    cls = [str(i) for i in range(10)]
    train = ArrayData("digits", x[:256, None], y[:256], cls, (0.0, 16.0))
    test = ArrayData("digits", xt[:64, None], yt[:64], cls, (0.0, 16.0))
    mg.manual_seed(0)
    model = mg.models.get("mlp", in_features=64, hidden=[32])
    res = mg.train.fit(
        model, train, test, epochs=2, batch_size=32, lr=1e-2, device=DEV, precision="bf16",
        augment=1, label_smoothing=0.1, progress=False,
    )  # fmt: skip
    assert res.metrics["test_accuracy"] > 0.5
    assert all(p.device == mg.device(DEV) for p in res.model.parameters())


def test_writes_into_expanded_tensors_are_refused_on_every_device(device):
    # NOTE: NumPy's broadcast views are read-only; CuPy's are not and a write would race
    x = mg.ones(4, device=device).expand(3, 4)
    for write in (lambda: x.add_(1), lambda: x.zero_(), lambda: x.__setitem__(0, 2.0)):
        with pytest.raises(RuntimeError, match=r"same memory \(an expand\(\) view\)"):
            write()
    y = mg.ones(1, 4, device=device).expand(1, 4)  # nothing repeated: writable, as in PyTorch
    y.add_(1)
    assert y.cpu().tolist() == [[2.0, 2.0, 2.0, 2.0]]


def test_backward_gradient_on_another_device_names_both_and_the_fix():
    y = mg.ones(3, device=DEV, requires_grad=True) * 2
    with pytest.raises(DeviceError, match=r"gradient is on cpu but the output is on fakegpu:1.*"
                                          r"gradient\.to\('fakegpu:1'\)"):  # fmt: skip
        y.backward(mg.ones(3))
    y.backward(mg.ones(3, device=DEV))  # on the output's device: fine
