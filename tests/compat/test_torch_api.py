"""PyTorch's small utilities on manygrad, each compared with what torch does."""

import numpy as np
import pytest
import torch

import manygrad as mg


@pytest.mark.parametrize(
    "args", [(2, 3), (4,), (), ([1, 2],), ([[1.5], [2.0]],), ([True],), "size"]
)
def test_legacy_tensor_constructor(args):
    if args == "size":
        m, t = mg.Tensor(mg.Size([2, 3])), torch.Tensor(torch.Size([2, 3]))
        assert tuple(m.shape) == tuple(t.shape) == (2, 3)
        return
    m, t = mg.Tensor(*args), torch.Tensor(*args)
    assert tuple(m.shape) == tuple(t.shape)
    assert str(m.dtype).split(".")[-1] == str(t.dtype).split(".")[-1] or args == ([True],)
    if args and not isinstance(args[0], int):
        np.testing.assert_array_equal(m.numpy(), t.numpy())


def test_legacy_tensor_of_a_tensor_shares_memory():
    x = mg.tensor([1, 2])
    y = mg.Tensor(x)
    assert y.dtype is mg.int64 and y.data_ptr() == x.data_ptr()
    assert mg.tensor([1, 2]).dtype is mg.int64  # mg.tensor infers, as torch.tensor does


@pytest.mark.parametrize("name", ["FloatTensor", "DoubleTensor", "LongTensor", "IntTensor",
                                  "BoolTensor", "ByteTensor", "HalfTensor"])  # fmt: skip
def test_typed_tensor_classes(name):
    m = getattr(mg, name)([1, 0, 2])
    t = getattr(torch, name)([1, 0, 2])
    assert m.type() == t.type() == f"torch.{name}"
    assert isinstance(m, getattr(mg, name)) and isinstance(m, mg.Tensor)
    assert not isinstance(mg.zeros(1, dtype=mg.int8), getattr(mg, name))
    assert tuple(getattr(mg, name)(2, 5).shape) == (2, 5)
    assert mg.cuda.FloatTensor.device_type == "cuda"


def test_tensor_type_casts():
    x = mg.tensor([1.5, 2.0])
    assert x.type(mg.int64).dtype is mg.int64
    assert x.type("torch.DoubleTensor").dtype is mg.float64
    assert x.type(mg.LongTensor).dtype is mg.int64
    with pytest.raises(TypeError, match="invalid tensor type 'torch.Nope'"):
        x.type("torch.Nope")
    assert (x.byte().dtype, x.char().dtype, x.short().dtype) == (mg.uint8, mg.int8, mg.int16)


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty", "rand", "randn"])
def test_size_keyword(fn):
    assert tuple(getattr(mg, fn)(size=(2, 3)).shape) == tuple(getattr(torch, fn)(size=(2, 3)).shape)
    assert tuple(getattr(mg, fn)(size=[4]).shape) == (4,)
    with pytest.raises(TypeError, match="both positionally and as size="):
        getattr(mg, fn)(2, size=(2,))
    out = mg.zeros(0, dtype=mg.float64)
    assert getattr(mg, fn)(2, out=out) is out and out.shape == (2,) and out.dtype == mg.float64


def test_full_size_keyword_and_logspace():
    assert mg.full(size=(2,), fill_value=3.0).tolist() == [3.0, 3.0]
    np.testing.assert_allclose(mg.logspace(0, 2, 5, base=2.0).numpy(),
                               torch.logspace(0, 2, 5, base=2.0).numpy(), rtol=1e-6)  # fmt: skip


def test_layout_queries_match_torch():
    m = mg.arange(24).reshape(4, 6)[1:, ::2].transpose(0, 1)
    t = torch.arange(24).reshape(4, 6)[1:, ::2].transpose(0, 1)
    assert m.stride() == t.stride() and m.stride(1) == t.stride(1)
    assert m.storage_offset() == t.storage_offset()
    assert m.is_contiguous() == t.is_contiguous()
    assert (m.nelement(), m.ndimension(), m.element_size()) == (t.nelement(), t.ndimension(), 8)
    assert m.get_device() == -1 and not m.is_complex() and not m.is_sparse
    f = mg.zeros(3, 4, device="fakegpu")
    assert f.stride() == (4, 1) and f[1:].storage_offset() == 4


def test_format_spec():
    m, t = mg.tensor(1.23456), torch.tensor(1.23456)
    assert f"{m:.3f}" == f"{t:.3f}" and f"{m:>8.2e}" == f"{t:>8.2e}"
    assert f"{mg.tensor(3)}" == f"{torch.tensor(3)}"
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{mg.tensor([1.0]):.3f}"
    assert f"{mg.tensor([1.0])}" == str(mg.tensor([1.0]))


def test_finfo_iinfo():
    for dt in ("float32", "float64", "float16", "bfloat16"):
        m, t = mg.finfo(getattr(mg, dt)), torch.finfo(getattr(torch, dt))
        assert (m.eps, m.max, m.min, m.tiny, m.bits) == (t.eps, t.max, t.min, t.tiny, t.bits)
    for dt in ("int64", "int32", "uint8", "int8"):
        m, t = mg.iinfo(getattr(mg, dt)), torch.iinfo(getattr(torch, dt))
        assert (m.max, m.min, m.bits) == (t.max, t.min, t.bits)
    assert mg.finfo().eps == torch.finfo().eps
    with pytest.raises(TypeError, match="not a floating dtype"):
        mg.finfo(mg.int64)


def test_misc_queries():
    assert mg.is_floating_point(mg.zeros(1)) and not mg.is_complex(mg.zeros(1))
    assert mg.compile(len) is len and mg.compile(mode="max-autotune")(len) is len
    assert mg.backends.mps.is_available() is False
    assert mg.accelerator.is_available() == mg.cuda.is_available()
    assert mg.cuda.memory_allocated() == 0 or mg.cuda.is_available()
    mg.cuda.empty_cache()
    with mg.backends.cudnn.flags(enabled=False):
        assert mg.backends.cudnn.enabled is False
    assert mg.backends.cudnn.enabled is True
    mg.set_printoptions(precision=2)
    try:
        assert "1.23" in repr(mg.tensor([1.23456])) and "1.235" not in repr(mg.tensor([1.23456]))
    finally:
        mg.set_printoptions(profile="default")


def test_more_tensor_properties_match_torch():
    a = np.array([[1.0, 2.0], [3.0, float("nan")]], np.float32)
    m, t = mg.tensor(a), torch.tensor(a)
    np.testing.assert_array_equal(m.H.numpy(), t.H.numpy())
    np.testing.assert_array_equal(m.mH.numpy(), t.mH.numpy())
    assert m.is_meta == t.is_meta and m.is_quantized == t.is_quantized
    for other in (a, a + 1e-9, a + 1):
        for equal_nan in (False, True):
            assert m.allclose(mg.tensor(other), equal_nan=equal_nan) == t.allclose(
                torch.tensor(other), equal_nan=equal_nan
            )
    b = mg.tensor([1.0, 2.0])
    assert b.equal(mg.tensor([1.0, 2.0])) and not b.equal(mg.tensor([1.0, 3.0]))
    with pytest.raises(ValueError, match="use .mH"):
        _ = mg.zeros(2, 2, 2).H


def test_set_default_tensor_type():
    try:
        mg.set_default_tensor_type("torch.DoubleTensor")
        assert mg.zeros(1).dtype is mg.float64 and mg.get_default_dtype() is mg.float64
        mg.set_default_tensor_type(mg.FloatTensor)
        assert mg.zeros(1).dtype is mg.float32
        with pytest.raises(RuntimeError, match="no default device"):
            mg.set_default_tensor_type("torch.cuda.FloatTensor")
        with pytest.raises(TypeError, match="only floating types"):
            mg.set_default_tensor_type("torch.LongTensor")
    finally:
        mg.set_default_dtype(mg.float32)


def test_global_switches_read_back_as_in_torch():
    try:
        for mode in (True, False):
            mg.use_deterministic_algorithms(mode, warn_only=mode)
            assert mg.are_deterministic_algorithms_enabled() is mode
            assert mg.is_deterministic_algorithms_warn_only_enabled() is mode
        mg.set_float32_matmul_precision("high")
        assert mg.get_float32_matmul_precision() == "high"
        with pytest.raises(ValueError, match="'highest', 'high' or 'medium'"):
            mg.set_float32_matmul_precision("low")
        mg.set_num_interop_threads(2)
        assert mg.get_num_interop_threads() == 2
        with pytest.raises(ValueError, match="positive"):
            mg.set_num_interop_threads(0)
    finally:
        mg.set_float32_matmul_precision("highest")
        mg.set_num_interop_threads(1)
    assert torch.get_float32_matmul_precision() == mg.get_float32_matmul_precision()


def test_range_indexes_like_a_list():
    a = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    m, t = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    lab = [1, 4, 0, 2]
    out_m = m[range(4), mg.tensor(lab)]
    out_t = t[range(4), torch.tensor(lab)]
    np.testing.assert_array_equal(out_m.detach().numpy(), out_t.detach().numpy())
    out_m.sum().backward()
    out_t.sum().backward()
    np.testing.assert_array_equal(m.grad.numpy(), t.grad.numpy())
    np.testing.assert_array_equal(m[range(1, 3)].detach().numpy(), a[1:3])
    x = mg.zeros(3)
    x[range(2)] = 1.0
    assert x.tolist() == [1.0, 1.0, 0.0]


def test_layout_and_fmod():
    assert mg.zeros(2).layout == mg.strided
    a = np.array([-5.0, 5.5, 7.0], np.float32)
    np.testing.assert_array_equal(mg.tensor(a).fmod(3.0).numpy(), torch.tensor(a).fmod(3.0).numpy())
