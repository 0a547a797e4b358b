"""fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine against PyTorch:
values (edge values included), the straight-through gradient, dtypes and errors."""

import numpy as np
import pytest
import torch

import manygrad as mg

EDGE = [-10.0, -1.26, -0.5, -0.25, 0.25, 0.75, 1.25, 2.5, 100.0, 1e30, -1e30,
        float("inf"), float("-inf"), float("nan"), 0.0, -0.0]  # fmt: skip


def _values(seed=0, n=200):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal(n) * 4, np.array(EDGE)]).astype(np.float32)


def _both(fn_name, x_np, *args, dtype=torch.float32, margs=None, grad=True):
    tx = torch.tensor(x_np, dtype=dtype, requires_grad=grad)
    mx = mg.tensor(x_np, dtype=getattr(mg, str(dtype).split(".")[1]), requires_grad=grad)
    ty = getattr(torch, fn_name)(tx, *args)
    my = getattr(mg, fn_name)(mx, *(margs if margs is not None else args))
    assert my.dtype.name == str(ty.dtype).split(".")[1]
    np.testing.assert_array_equal(
        my.detach().float().numpy(), ty.detach().float().numpy(), err_msg=fn_name
    )
    if grad:
        g = np.random.default_rng(1).standard_normal(x_np.shape).astype(np.float32)
        ty.backward(torch.tensor(g, dtype=dtype))
        my.backward(mg.tensor(g, dtype=mx.dtype))
        np.testing.assert_array_equal(mx.grad.float().numpy(), tx.grad.float().numpy())
    return my, ty


@pytest.mark.parametrize("scale,zp,qmin,qmax", [(0.5, 3, 0, 15), (0.1, 0, -128, 127),
                                                 (0.037, -5, -8, 7), (1.0, 0, 0, 0),
                                                 (-0.5, 3, 0, 15), (0.0, 3, 0, 15)])  # fmt: skip
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_per_tensor_matches_torch(scale, zp, qmin, qmax, dtype):
    with np.errstate(all="ignore"):
        _both("fake_quantize_per_tensor_affine", _values(), scale, zp, qmin, qmax, dtype=dtype)


def test_per_tensor_takes_tensor_qparams():
    x = _values(2)
    _both(
        "fake_quantize_per_tensor_affine", x, torch.tensor(0.2), torch.tensor(1, dtype=torch.int32),
        -8, 7, margs=(mg.tensor(0.2), mg.tensor(1, dtype=mg.int32), -8, 7),
    )  # fmt: skip


def test_straight_through_gradient_is_the_range_mask():
    x = mg.tensor([-3.0, -0.2, 0.0, 0.4, 3.0, float("nan")], requires_grad=True)
    mg.fake_quantize_per_tensor_affine(x, 0.25, 0, -4, 4).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_second_order_gradient_flows_through_the_mask():
    x = mg.tensor([-3.0, 0.4, 3.0], requires_grad=True)
    y = mg.fake_quantize_per_tensor_affine(x * x, 0.25, 0, -4, 4)
    (g,) = mg.autograd.grad(y.sum(), x, create_graph=True)
    assert g.tolist() == pytest.approx([0.0, 0.8, 0.0])
    assert g.requires_grad


@pytest.mark.parametrize("zp_dtype", [torch.int32, torch.float32, torch.float16])
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_per_channel_matches_torch(zp_dtype, axis, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 5, 6)) * 3).astype(np.float32)
    x[0, 0, :4] = [np.inf, -np.inf, np.nan, 1e30]
    x[1, 1, :2] = [3e9, 1e19]  # an int64 holds the first, not the second
    n = x.shape[axis]
    scale = rng.uniform(0.05, 0.5, n).astype(np.float32)
    zp = rng.integers(-3, 4, n).astype(np.float32)
    if zp_dtype is not torch.int32:
        zp += 0.5
    tz = torch.tensor(zp).to(zp_dtype)
    mz = mg.tensor(zp).to(getattr(mg, str(zp_dtype).split(".")[1]))
    _both(
        "fake_quantize_per_channel_affine", x, torch.tensor(scale), tz, axis, -8, 7, dtype=dtype,
        margs=(mg.tensor(scale), mz, axis, -8, 7),
    )  # fmt: skip


def _errors(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001  (the type is what is compared)
        return e
    return None


@pytest.mark.parametrize("case", ["range", "zp", "int_input", "scale_grad"])
def test_per_tensor_errors_as_torch(case):
    x = [0.5, 1.0]
    args = {"range": (0.5, 3, 5, 4), "zp": (0.5, 20, 0, 15), "int_input": (1.0, 0, 0, 3),
            "scale_grad": None}[case]  # fmt: skip
    if case == "scale_grad":
        te = _errors(
            torch.fake_quantize_per_tensor_affine,
            torch.tensor(x),
            torch.tensor(0.5, requires_grad=True),
            torch.tensor(0, dtype=torch.int32),
            0,
            3,
        )
        me = _errors(mg.fake_quantize_per_tensor_affine, mg.tensor(x),
                     mg.tensor(0.5, requires_grad=True), mg.tensor(0, dtype=mg.int32), 0, 3)  # fmt: skip
    else:
        dt = "int64" if case == "int_input" else "float32"
        te = _errors(
            torch.fake_quantize_per_tensor_affine, torch.tensor(x).to(getattr(torch, dt)), *args
        )
        me = _errors(mg.fake_quantize_per_tensor_affine, mg.tensor(x).to(getattr(mg, dt)), *args)
    assert te is not None and me is not None
    assert isinstance(me, type(te)), (me, te)
    if case in ("range", "zp"):
        assert str(te).split("`")[1] in str(me)


@pytest.mark.parametrize(
    "case",
    ["zp_len", "axis", "negative_axis", "scale_f64", "zp_range", "scale_2d", "zp_i64", "int_input"],
)
def test_per_channel_errors_as_torch(case):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    sc, zp, axis, xdt = [0.1, 0.2, 0.3], [0, 1, 2], 1, "float32"
    sdt, zdt = "float32", "int32"
    if case == "zp_len":
        zp = [0, 1]
    elif case == "axis":
        axis = 3
    elif case == "negative_axis":
        axis = -2
    elif case == "scale_f64":
        sdt = "float64"
    elif case == "zp_range":
        zp = [0, 1, 20]
    elif case == "scale_2d":
        sc = [[0.1], [0.2], [0.3]]
    elif case == "zp_i64":
        zdt = "int64"
    else:
        xdt = "int32"

    def call(lib):
        t = lib.tensor(x).to(getattr(lib, xdt))
        s = lib.tensor(sc, dtype=getattr(lib, sdt))
        z = lib.tensor(zp, dtype=getattr(lib, zdt))
        return _errors(lib.fake_quantize_per_channel_affine, t, s, z, axis, -8, 7)

    te, me = call(torch), call(mg)
    assert te is not None and me is not None
    assert isinstance(me, type(te)), (me, te)


def test_per_channel_scale_needing_grad_is_refused():
    with pytest.raises(RuntimeError, match="scale"):
        mg.fake_quantize_per_channel_affine(
            mg.randn(3, 2), mg.ones(3, requires_grad=True), mg.zeros(3, dtype=mg.int32), 0, 0, 7
        )


@pytest.mark.parametrize("device", ["fakegpu"])
def test_same_values_and_gradients_on_the_fake_gpu(device):
    x = _values(5)
    got = {}
    for dev in ("cpu", device):
        t = mg.tensor(x, device=dev, requires_grad=True)
        y = mg.fake_quantize_per_tensor_affine(t, 0.25, 2, -8, 7) + mg.fake_quantize_per_channel_affine(
            t.reshape(2, -1), mg.tensor([0.1, 0.3], device=dev), mg.tensor([0, 1], dtype=mg.int32, device=dev),
            0, -8, 7,
        ).reshape(-1)  # fmt: skip
        y.sum().backward()
        assert y.device.type == dev
        got[dev] = (y.detach().cpu().numpy(), t.grad.cpu().numpy())
    np.testing.assert_array_equal(got["cpu"][0], got[device][0])
    np.testing.assert_array_equal(got["cpu"][1], got[device][1])
