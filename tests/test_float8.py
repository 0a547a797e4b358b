"""float8 dtypes, checked bit for bit against PyTorch 2.13 on the CPU: casts (rounding,
saturation, NaN), creation, dtype views, printing, promotion, the few ops PyTorch computes
and the many it refuses, and the files (safetensors, torch.save checkpoints)."""

import io
import pickle

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import DTypeError

torch = pytest.importorskip("torch")

NAMES = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"]
EDGES = [0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1, -1, 0.75, 1.5, 2.5, 3, 3.5,
         5, 6, 7, 240, 247, 248, 448, 449, 464, 465, 480, 500, 1e6, 57344, 57345, 61440, 61441,
         1e-3, 1e-9, 2**-9, 2**-10, 1.5 * 2**-10, 2**-11, 2**-16, 2**-17, 1.5 * 2**-17, 2**-18,
         3e-38, 1e38, 2e38, 3.4e38, 2**-126, 2**-127, 2**-128, 1.0625 + 2**-30]  # fmt: skip
RS = np.random.RandomState(0)
with np.errstate(all="ignore"):
    VALUES = np.concatenate([
        EDGES, np.negative(EDGES),
        np.arange(0, 2**32, 65537, dtype=np.uint64).astype(np.uint32).view(np.float32),  # all
        RS.randn(3000) * 10.0 ** RS.randint(-12, 8, 3000),
    ])  # fmt: skip
ALL_BITS = np.arange(256, dtype=np.uint8)


def _bits(t) -> np.ndarray:
    """A 1-byte tensor's bits (manygrad or torch)."""
    if isinstance(t, torch.Tensor):
        return t.contiguous().view(torch.uint8).numpy()
    return t.contiguous().view(mg.uint8).numpy()


def _pair(name, bits=ALL_BITS):
    """Every float8 value (or those of ``bits``) in torch and in manygrad."""
    t = torch.from_numpy(bits.copy()).view(getattr(torch, name))
    return t, mg.from_numpy(bits.copy()).view(getattr(mg, name))


def _source(lib, src: str):
    """VALUES as a ``src`` tensor, with the same bits in both libraries."""
    if src == "bfloat16":  # NOTE: made by torch: its float32 -> bfloat16 NaNs differ
        b = torch.from_numpy(VALUES.astype(np.float32)).bfloat16().view(torch.int16).numpy()
        return torch.from_numpy(b).view(torch.bfloat16) if lib is torch else (
            mg.from_numpy(b.copy()).view(mg.bfloat16))  # fmt: skip
    if src == "bool":
        return lib.tensor(VALUES[:50] != 0)
    with np.errstate(all="ignore"):
        v = VALUES.astype(np.float32 if src == "float32" else src if src[0] == "f" else np.float64)
        if src[0] in "iu":
            v = np.nan_to_num(v, posinf=0, neginf=0).clip(-1e6, 1e6).astype(np.int64).astype(src)
    return lib.from_numpy(v.copy())


# ---------------------------------------------------------------------------- the dtypes


@pytest.mark.parametrize("name", NAMES)
def test_dtype_fields_match_torch(name):
    d, td = getattr(mg, name), getattr(torch, name)
    assert repr(d) == f"manygrad.{name}" and d.itemsize == td.itemsize == 1
    assert (d.is_floating_point, d.is_signed, d.is_complex) == (
        td.is_floating_point, td.is_signed, td.is_complex)  # fmt: skip
    assert mg.dtypes.from_any(f"torch.{name}") is d and pickle.loads(pickle.dumps(d)) is d
    fi, tfi = mg.finfo(d), torch.finfo(td)
    for f in ["bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"]:
        assert getattr(fi, f) == getattr(tfi, f), f
    x = mg.zeros(2, 3, dtype=d)
    assert x.dtype is d and x.element_size() == 1 and x.is_floating_point()
    assert mg.empty(4, dtype=d).dtype is d and mg.empty(4, dtype=d).shape == (4,)


# ---------------------------------------------------------------------------- casts


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("src", ["float32", "float64", "float16", "bfloat16", "int64", "int8",
                                 "uint8", "bool"])  # fmt: skip
def test_casts_to_float8_match_torch_bits(name, src):
    """Rounding to nearest-even through float32, e4m3fn's saturation at ±448, e5m2's NaN
    0x7f, the fnuz NaN 0x80, and e8m0fnu's exponent rounding (sign ignored, 0 -> 2**-127)."""
    want = _bits(_source(torch, src).to(getattr(torch, name)))
    np.testing.assert_array_equal(_bits(_source(mg, src).to(getattr(mg, name))), want)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dst", ["float32", "float64", "float16", "bfloat16", "int64", "int32",
                                 "int8", "uint8", "bool", *NAMES])  # fmt: skip
def test_casts_from_float8_match_torch(name, dst):
    t, m = _pair(name)
    want, got = t.to(getattr(torch, dst)), m.to(getattr(mg, dst))
    assert got.dtype is getattr(mg, dst)
    if dst in NAMES:
        np.testing.assert_array_equal(_bits(got), _bits(want))
    elif want.is_floating_point():  # values, and the sign of zeros and NaNs
        w, g = want.double().numpy(), got.double().numpy()
        np.testing.assert_array_equal(g, w)
        sign = np.ones_like(w, bool) if dst != "bfloat16" else ~np.isnan(w)
        np.testing.assert_array_equal(np.signbit(g)[sign], np.signbit(w)[sign])
    else:  # NOTE: float -> int of NaN and out-of-range values is undefined in C
        finite = np.isfinite(t.float().numpy())
        np.testing.assert_array_equal(got.numpy()[finite], want.numpy()[finite])


@pytest.mark.parametrize("name", NAMES)
def test_creation_rounds_as_torch(name):
    d, td = getattr(mg, name), getattr(torch, name)
    vals = [1.0, 500.0, -3.0, 1.0625 + 2**-30, 0.0, float("inf"), float("nan"), 1e-30]
    cases = [
        lambda lib, dt: lib.tensor(vals, dtype=dt),
        lambda lib, dt: lib.tensor([1, 2, 3, 449], dtype=dt),
        lambda lib, dt: lib.tensor(np.array(vals), dtype=dt),
        lambda lib, dt: lib.as_tensor(lib.tensor(vals), dtype=dt),
        lambda lib, dt: lib.full((3,), 500.0, dtype=dt),  # PyTorch: out of range for some
        lambda lib, dt: lib.full((1,), 500.0, dtype=dt),  # one element: saturated, not refused
        lambda lib, dt: lib.full((2,), 3, dtype=dt),
        lambda lib, dt: lib.full((2,), -float("inf"), dtype=dt),
        lambda lib, dt: lib.full((2,), 1e-30, dtype=dt),
        lambda lib, dt: lib.zeros(3, dtype=dt),
        lambda lib, dt: lib.ones(2, 2, dtype=dt),
        lambda lib, dt: lib.eye(2, dtype=dt),
        lambda lib, dt: lib.zeros_like(lib.ones(3), dtype=dt),
        lambda lib, dt: lib.tensor(vals).to(dt).clone().fill_(-7.0),
        lambda lib, dt: lib.tensor(vals).to(dt).clone().fill_(1000.0),
        lambda lib, dt: lib.tensor(vals).to(dt).clone().fill_(lib.tensor(1000.0)),
        lambda lib, dt: lib.tensor(vals).to(dt).clone().zero_(),
        lambda lib, dt: lib.zeros(len(vals), dtype=dt).copy_(lib.tensor(vals)),
    ]
    for i, make in enumerate(cases):
        try:
            want = make(torch, td)
        except RuntimeError:  # NOTE: PyTorch fills no number beyond the type's range
            with pytest.raises(DTypeError, match="without overflow"):
                make(mg, d)
            continue
        got = make(mg, d)
        assert got.dtype is d, i
        np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"case {i}")


def test_host_values_and_numpy():
    x = mg.tensor([1.5, -2.0, 448.0, float("nan")], dtype=mg.float8_e4m3fn)
    assert x.tolist()[:3] == [1.5, -2.0, 448.0] and type(x[0].item()) is float
    assert x.float().dtype is mg.float32
    # NOTE: PyTorch's numpy() refuses float8 (and bfloat16); manygrad gives ml_dtypes' arrays
    a = x.numpy()
    assert a.dtype.name == "float8_e4m3fn" and mg.from_numpy(a).dtype is mg.float8_e4m3fn


# ---------------------------------------------------------------------------- views


def test_dtype_views_reinterpret_bits_as_torch():
    for name in NAMES:
        t, m = _pair(name)
        np.testing.assert_array_equal(m.float().numpy(), t.float().numpy())  # NaN == NaN
        np.testing.assert_array_equal(m.view(mg.int8).numpy(), t.view(torch.int8).numpy())
    f = [1.0, -2.5, 3.0, 0.1]
    cases = [
        lambda lib: lib.tensor(f).view(lib.float8_e4m3fn),
        lambda lib: lib.tensor(f).reshape(2, 2).view(lib.float8_e5m2),
        lambda lib: lib.tensor(f).to(lib.float8_e4m3fn).view(lib.float8_e5m2),
        lambda lib: lib.tensor(f).to(lib.float8_e4m3fn).view(lib.uint8)[1:],
        lambda lib: lib.tensor(f).to(lib.float8_e4m3fn).view(lib.int16),
        lambda lib: lib.tensor(f).to(lib.float8_e4m3fn).view(lib.bool),
    ]
    for i, make in enumerate(cases):
        want, got = make(torch), make(mg)
        assert got.dtype.name == str(want.dtype)[6:] and got.shape == want.shape, i
        np.testing.assert_array_equal(got.view(mg.uint8).numpy(), _bits(want.view(torch.uint8)))


def test_dtype_view_shares_memory_and_never_requires_grad():
    x = mg.zeros(3, dtype=mg.float8_e4m3fn)
    x.view(mg.uint8)[0] = 0x7E
    assert x.tolist() == [448.0, 0.0, 0.0]
    y = mg.ones(2, requires_grad=True).view(mg.int32)
    assert not y.requires_grad and y.dtype is mg.int32


@pytest.mark.parametrize("make", [
    lambda lib: lib.zeros(()).view(lib.float8_e4m3fn),  # 0-d to another element size
    lambda lib: lib.zeros(2, 3).t().view(lib.float8_e5m2),  # last dim not contiguous
    lambda lib: lib.zeros(3, dtype=lib.float8_e4m3fn).view(lib.float32),  # 3 bytes
    lambda lib: lib.zeros(2, 5, dtype=lib.float8_e4m3fn)[:, 1:].view(lib.int16),  # offset 1
])  # fmt: skip
def test_dtype_view_refusals_match_torch(make):
    with pytest.raises(RuntimeError):
        make(torch)
    with pytest.raises(RuntimeError, match="view: self"):
        make(mg)


# ---------------------------------------------------------------------------- printing


@pytest.mark.parametrize("name,vals", [
    ("float8_e4m3fn", [1.0, 448.0, -3.0]), ("float8_e4m3fn", [float("nan"), 1.0, 500.0]),
    ("float8_e4m3fn", [2**-9, 1.0, 2.0, 448.0]), ("float8_e5m2", [1.5, 2.5, -3.0]),
    ("float8_e5m2", [57344.0, -57344.0, float("inf"), -float("inf")]), ("float8_e5m2", 3.0),
    ("float8_e5m2", []), ("float8_e4m3fnuz", [[1.0, 2.0], [3.0, 0.25]]),
    ("float8_e5m2fnuz", [float("nan"), -0.0, 1.0]), ("float8_e5m2", list(range(20))),
    ("float8_e8m0fnu", [0.0, 0.0]), ("float8_e8m0fnu", [2**-127, 1.0, 2.0]),
    ("float8_e8m0fnu", [2**-127, 1e-30, 2.0]), ("float8_e8m0fnu", [2**-127, 0.5, 2.0]),
    ("float8_e8m0fnu", [2**-127, float("nan"), 2.0]), ("float8_e8m0fnu", [2.0**127, 1.0]),
])  # fmt: skip
def test_repr_matches_torch(name, vals):
    want = repr(torch.tensor(vals, dtype=getattr(torch, name))).replace("torch.", "manygrad.")
    assert repr(mg.tensor(vals, dtype=getattr(mg, name))) == want


# ---------------------------------------------------------------------------- promotion

OTHERS = ["float32", "float64", "float16", "bfloat16", "int8", "int64", "uint8", "bool",
          "uint16", "complex64"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_promote_types_refuses_as_torch(name):
    for other in NAMES + OTHERS:
        a, b = getattr(torch, name), getattr(torch, other)
        try:
            want = str(torch.promote_types(a, b))[6:]
        except RuntimeError:
            with pytest.raises(DTypeError, match="Promotion for Float8 Types"):
                mg.promote_types(getattr(mg, name), getattr(mg, other))
            continue
        assert mg.promote_types(getattr(mg, name), getattr(mg, other)).name == want
        assert mg.can_cast(getattr(mg, name), getattr(mg, other)) == torch.can_cast(a, b)
        assert mg.can_cast(getattr(mg, other), getattr(mg, name)) == torch.can_cast(b, a)


@pytest.mark.parametrize("other", [
    2, 2.5, True, 1j, ("float32", 0), ("int64", 0), ("bool", 0), ("float64", 0),
    ("complex64", 0), ("float8_e5m2", 0), ("float32", 1), ("int64", 1), ("bool", 1),
])  # fmt: skip
@pytest.mark.parametrize("zero_dim", [False, True])
def test_result_type_matches_torch(other, zero_dim):
    def args(lib):
        x = lib.ones(() if zero_dim else (2,), dtype=lib.float8_e4m3fn)
        if not isinstance(other, tuple):
            return x, other
        return x, lib.ones((2,) * other[1], dtype=getattr(lib, other[0]))

    try:
        want = str(torch.result_type(*args(torch)))[6:]
    except RuntimeError:
        with pytest.raises(DTypeError):
            mg.result_type(*args(mg))
        return
    assert mg.result_type(*args(mg)).name == want


# ---------------------------------------------------------------------------- ops


def _operands(lib, name):
    d = getattr(lib, name)
    x = lib.tensor([1.0, 2.0, 448.0] if name != "float8_e8m0fnu" else [1.0, 2.0, 4.0], dtype=d)
    y = lib.tensor([0.5, 1.0, 300.0], dtype=d)
    m = lib.tensor([[1.0, 2.0], [4.0, 256.0]], dtype=d)
    return x, y, m


# ops PyTorch 2.13 computes on float8 CPU tensors (the result checked bit for bit)
COMPUTED = {
    "mul": lambda lib, x, y, m: x * y,
    "mul_0d_first": lambda lib, x, y, m: y[0] * x,
    "mul_": lambda lib, x, y, m: x.clone().mul_(y),
    "outer": lambda lib, x, y, m: lib.outer(x, y),
    "matmul": lambda lib, x, y, m: m @ m,
    "vecmat": lambda lib, x, y, m: x[:2] @ m,
    "mm": lambda lib, x, y, m: lib.mm(m, m.t()),
    "linear": lambda lib, x, y, m: lib.nn.functional.linear(m, m, x[:2]),
    "linear_3d": lambda lib, x, y, m: lib.nn.functional.linear(m[None], m),
    "abs": lambda lib, x, y, m: (-x.float()).to(x.dtype).abs(),
    "eq": lambda lib, x, y, m: x == y,
    "ne": lambda lib, x, y, m: x != y,
    "eq_rounded_number": lambda lib, x, y, m: x == 1.1,
    "eq_saturated_number": lambda lib, x, y, m: x == 500,
    "isnan": lambda lib, x, y, m: x.isnan(),
    "isinf": lambda lib, x, y, m: x.isinf(),
    "isfinite": lambda lib, x, y, m: x.isfinite(),
    "any": lambda lib, x, y, m: x.any(),
    "all": lambda lib, x, y, m: m.all(0),
    "equal": lambda lib, x, y, m: lib.tensor([lib.equal(x, x.clone()), lib.equal(x, y)]),
    "sum_float32": lambda lib, x, y, m: x.sum(dtype=lib.float32),
    "mean_float32": lambda lib, x, y, m: x.mean(dtype=lib.float32),
    "where": lambda lib, x, y, m: lib.where(lib.tensor([True, False, True]), x, y),
    "where_number": lambda lib, x, y, m: lib.where(lib.tensor([True, False, True]), x, 500.0),
    "where_number_first": lambda lib, x, y, m: lib.where(lib.tensor([False, True, True]), 0.0, x),
    "cat": lambda lib, x, y, m: lib.cat([x, y]),
    "stack": lambda lib, x, y, m: lib.stack([x, y]),
    "index": lambda lib, x, y, m: x[lib.tensor([2, 0])],
    "mask": lambda lib, x, y, m: x[x.isnan()],
    "slice_t": lambda lib, x, y, m: m.t().contiguous()[1:],
    "repeat": lambda lib, x, y, m: x.repeat(2),
    "roll": lambda lib, x, y, m: x.roll(1),
    "pad": lambda lib, x, y, m: lib.nn.functional.pad(x, (1, 1)),
    "index_select": lambda lib, x, y, m: m.index_select(1, lib.tensor([1])),
    "setitem": lambda lib, x, y, m: _setitem(x.clone(), slice(0, 2), y[:2]),
    "setitem_number": lambda lib, x, y, m: _setitem(x.clone(), 0, 500.0),
    "setitem_float32": lambda lib, x, y, m: _setitem(
        x.clone(), slice(1, 3), lib.tensor([1e6, 3.3])
    ),
    "index_put": lambda lib, x, y, m: x.clone().index_put_((lib.tensor([0]),), y[:1]),
}
# ops it refuses (manygrad must raise, not compute)
REFUSED = {
    "add": lambda lib, x, y, m: x + y,
    "add_number": lambda lib, x, y, m: x + 1,
    "sub": lambda lib, x, y, m: x - y,
    "div": lambda lib, x, y, m: x / y,
    "neg": lambda lib, x, y, m: -x,
    "mul_number": lambda lib, x, y, m: x * 2,
    "rmul_number": lambda lib, x, y, m: 2.5 * x,
    "mul_0d": lambda lib, x, y, m: x * y[0],
    "sum": lambda lib, x, y, m: x.sum(),
    "mean": lambda lib, x, y, m: x.mean(),
    "max": lambda lib, x, y, m: x.max(),
    "amax": lambda lib, x, y, m: m.amax(0),
    "argmax": lambda lib, x, y, m: x.argmax(),
    "lt": lambda lib, x, y, m: x < y,
    "ge_number": lambda lib, x, y, m: x >= 1.0,
    "exp": lambda lib, x, y, m: x.exp(),
    "sqrt": lambda lib, x, y, m: x.sqrt(),
    "relu": lambda lib, x, y, m: lib.relu(x),
    "clamp": lambda lib, x, y, m: x.clamp(0, 1),
    "softmax": lambda lib, x, y, m: lib.softmax(x, 0),
    "cumsum": lambda lib, x, y, m: x.cumsum(0),
    "prod": lambda lib, x, y, m: x.prod(),
    "maximum": lambda lib, x, y, m: lib.maximum(x, y),
    "bmm": lambda lib, x, y, m: lib.bmm(m[None], m[None]),
    "matvec": lambda lib, x, y, m: m @ x[:2],
    "dot": lambda lib, x, y, m: lib.dot(x, y),
    "add_": lambda lib, x, y, m: x.clone().add_(y),
    "index_add": lambda lib, x, y, m: x.index_add(0, lib.tensor([0]), y[:1]),
    "mul_number_": lambda lib, x, y, m: x.clone().mul_(2),
    "isclose": lambda lib, x, y, m: lib.isclose(x, y),
    "allclose": lambda lib, x, y, m: lib.allclose(x, y),
    "float32_operand": lambda lib, x, y, m: x * lib.ones(3),
    "two_float8_types": lambda lib, x, y, m: (
        x == y.view(lib.float8_e5m2 if x.dtype != lib.float8_e5m2 else lib.float8_e4m3fn)
    ),
}


def _setitem(x, idx, v):
    x[idx] = v
    return x


def _run(lib, name, fn):
    x, y, m = _operands(lib, name)
    try:
        return fn(lib, x, y, m)
    except (RuntimeError, NotImplementedError) as e:
        return e


# NOTE: where manygrad differs on purpose: ops that only move values run on every float8
# type (PyTorch 2.13 lacks a few kernels for e8m0fnu); isfinite on e8m0fnu, true on NaN in
# PyTorch, is refused
MOVES_PYTORCH_LACKS = {("pad", "float8_e8m0fnu"), ("index_put", "float8_e8m0fnu")}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("op", list(COMPUTED))
def test_ops_torch_computes_give_its_bits(name, op):
    want, got = _run(torch, name, COMPUTED[op]), _run(mg, name, COMPUTED[op])
    if (op, name) == ("isfinite", "float8_e8m0fnu"):
        assert isinstance(got, DTypeError)
        return
    if (op, name) in MOVES_PYTORCH_LACKS:
        assert isinstance(want, Exception) and not isinstance(got, Exception)
        bits = (t.view(torch.uint8) for t in _operands(torch, name))
        want = COMPUTED[op](torch, *bits).view(getattr(torch, name))  # the moves, on the bits
    if isinstance(want, Exception):  # NOTE: e.g. abs, matmul: no e8m0fnu kernel in PyTorch
        assert isinstance(got, DTypeError) and name in str(got), got
        return
    assert not isinstance(got, Exception), got
    assert got.dtype.name == str(want.dtype)[6:] and got.shape == want.shape
    if want.dtype.itemsize == 1 and want.is_floating_point():
        np.testing.assert_array_equal(_bits(got), _bits(want))
    else:
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("op", list(REFUSED))
def test_ops_torch_refuses_raise_a_clear_error(name, op):
    assert isinstance(_run(torch, name, REFUSED[op]), Exception)
    got = _run(mg, name, REFUSED[op])
    assert isinstance(got, DTypeError), got
    assert name in str(got) and ("float()" in str(got) or "Promotion" in str(got))


def test_autograd_through_a_cast_rounds_the_gradient_as_torch():
    want = []
    for lib in (torch, mg):
        a = lib.ones(3, requires_grad=True)
        (a.to(lib.float8_e4m3fn).float() * lib.tensor([500.0, 3.3, -1e-9])).sum().backward()
        want.append(a.grad.numpy())
    np.testing.assert_array_equal(want[1], want[0])  # 448 (saturated), 3.25, -0.0


def test_float8_tensors_live_on_the_cpu(device):
    x = mg.tensor([1.0, -2.5, 448.0], dtype=mg.float8_e4m3fn)
    if mg.device(device).type == "cpu":
        assert x.to(device) is x
        return
    with pytest.raises(DTypeError, match="CPU only"):
        x.to(device)
    with pytest.raises(DTypeError, match="CPU only"):
        mg.zeros(2, dtype=mg.float8_e5m2, device=device)
    with pytest.raises(DTypeError, match="CPU only"):
        mg.tensor([1.0], device=device).to(mg.float8_e4m3fn)
    bits = x.view(mg.uint8).to(device)  # the way the error names: move the bits
    np.testing.assert_array_equal(_bits(bits.cpu().view(mg.float8_e4m3fn)), _bits(x))


# ---------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", NAMES)
def test_safetensors_round_trip_and_same_bytes_as_safetensors_torch(tmp_path, name):
    st_torch = pytest.importorskip("safetensors.torch")
    t, m = _pair(name)
    t, m = t.reshape(16, 16), m.reshape(16, 16)
    mg.io.safetensors.save_file({"w": m}, tmp_path / "m.safetensors")
    st_torch.save_file({"w": t}, str(tmp_path / "t.safetensors"))
    assert (tmp_path / "m.safetensors").read_bytes() == (tmp_path / "t.safetensors").read_bytes()
    for f in ("m", "t"):
        got = mg.io.safetensors.load_file(tmp_path / f"{f}.safetensors")["w"]
        assert got.dtype is getattr(mg, name)
        np.testing.assert_array_equal(_bits(got), _bits(t))
    np.testing.assert_array_equal(_bits(st_torch.load_file(str(tmp_path / "m.safetensors"))["w"]),
                                  _bits(t))  # fmt: skip


def test_safetensors_mixed_state_dict_lays_out_data_as_safetensors_torch(tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    sd = {
        "w8": torch.arange(6.0).to(torch.float8_e4m3fn).reshape(2, 3),
        "bias": torch.ones(3),
        "s": torch.tensor([2.5]).to(torch.float8_e5m2),
        "h": torch.ones(2).bfloat16(),
    }
    st_torch.save_file(sd, str(tmp_path / "t.safetensors"))
    mg.save(mg.load(tmp_path / "t.safetensors"), tmp_path / "m.safetensors")
    want, got = (mg.io.safetensors.read_header(tmp_path / f"{f}.safetensors") for f in "tm")
    assert got[0] == want[0] and got[2] == want[2]  # names, dtypes, shapes, data offsets
    raw = [(tmp_path / f"{f}.safetensors").read_bytes() for f in "tm"]
    assert raw[0][want[2] :] == raw[1][got[2] :]  # the data bytes


def test_reads_torch_save_checkpoints_with_float8(tmp_path):
    allb = torch.from_numpy(ALL_BITS.copy())
    sd = {n: allb.view(getattr(torch, n)).reshape(16, 16)[:, 1::3] for n in NAMES}
    sd["weight"] = torch.nn.Parameter(torch.ones(2).to(torch.float8_e4m3fn), requires_grad=False)
    sd["u16"] = torch.arange(5).to(torch.uint16)  # NOTE: saved the same way (untyped storage)
    torch.save(sd, tmp_path / "ckpt.pt")
    got = mg.load(tmp_path / "ckpt.pt")
    assert isinstance(got["weight"], mg.nn.Parameter)
    for k, v in sd.items():
        assert got[k].dtype.name == str(v.dtype)[6:] and got[k].shape == v.shape
        f8 = v.dtype.itemsize == 1
        np.testing.assert_array_equal(_bits(got[k]) if f8 else got[k].numpy(),
                                      _bits(v.detach()) if f8 else v.numpy())  # fmt: skip


def test_mg_save_and_load_keep_float8(tmp_path):
    ckpt = {"model": {n: mg.from_numpy(ALL_BITS.copy()).view(getattr(mg, n)) for n in NAMES},
            "step": 3}  # fmt: skip
    buf = io.BytesIO()
    mg.save(ckpt, buf)
    buf.seek(0)
    got = mg.load(buf)
    assert got["step"] == 3
    for n in NAMES:
        assert got["model"][n].dtype is getattr(mg, n)
        np.testing.assert_array_equal(_bits(got["model"][n]), ALL_BITS)
