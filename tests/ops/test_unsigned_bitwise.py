"""Wide unsigned dtypes (uint16/32/64) and the bitwise operators, checked against PyTorch."""

import itertools

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

WIDE = ["uint16", "uint32", "uint64"]
OTHERS = ["bool", "uint8", "int8", "int64", "float16", "bfloat16", "float32", "float64",
          "complex64"]  # fmt: skip


def _same(got, want):
    assert got.dtype.name == str(want.dtype).replace("torch.", ""), (got.dtype, want.dtype)
    np.testing.assert_array_equal(np.asarray(got.cpu().tolist()), np.asarray(want.tolist()))


@pytest.mark.parametrize("a, b", list(itertools.product(WIDE, WIDE + OTHERS)))
def test_promotion_matches_torch_or_is_refused_like_it(a, b):
    for x, y in ((a, b), (b, a)):
        try:
            want = torch.promote_types(getattr(torch, x), getattr(torch, y))
        except RuntimeError:
            with pytest.raises(mg.errors.DTypeError, match="Promotion for uint16"):
                mg.promote_types(getattr(mg, x), getattr(mg, y))
            continue
        assert mg.promote_types(getattr(mg, x), getattr(mg, y)).name == str(want)[6:]


def test_dtype_facts():
    for name in WIDE:
        d, t = getattr(mg, name), getattr(torch, name)
        assert (d.is_signed, d.itemsize, d.is_floating_point) == (
            t.is_signed, t.itemsize, t.is_floating_point)  # fmt: skip
        assert mg.iinfo(d).max == torch.iinfo(t).max and mg.iinfo(d).min == 0


CASES = {
    "mul": lambda lib, x, y: x * y,  # wraps modulo 2**bits
    "mul_float_scalar": lambda lib, x, y: x * 2.5,
    "add_float_tensor": lambda lib, x, y: x + lib.ones_like(x, dtype=lib.float32),
    "div": lambda lib, x, y: x / y,
    "eq": lambda lib, x, y: x == y,
    "and": lambda lib, x, y: x & y,
    "xor": lambda lib, x, y: x ^ y,
    "sum": lambda lib, x, y: x.sum(),
    "cumsum": lambda lib, x, y: x.cumsum(0),
    "prod": lambda lib, x, y: y.prod(),
    "sort": lambda lib, x, y: lib.sort(x).values,
    "unique": lambda lib, x, y: lib.unique(lib.cat([x, y, x])),
    "slice": lambda lib, x, y: x[1:],
    "index": lambda lib, x, y: x[lib.tensor([0, 2])],
    "to_float": lambda lib, x, y: x.float(),
    "to_int64": lambda lib, x, y: x.to(lib.int64),
    "cat": lambda lib, x, y: lib.cat([x, y]),
    "full": lambda lib, x, y: lib.full((2,), 7, dtype=x.dtype, device=x.device),
    "from_negative": lambda lib, x, y: lib.tensor([5, -1], device=x.device).to(x.dtype),  # wraps
}


@pytest.mark.parametrize("name", WIDE)
@pytest.mark.parametrize("case", list(CASES))
def test_ops_match_torch(device, name, case):
    def run(lib, dev):
        dt = getattr(lib, name)
        x = lib.tensor([3, 1, 60000, 7], dtype=dt)
        y = lib.tensor([1, 2, 3, 60001], dtype=dt)
        if dev is not None:
            x, y = x.to(dev), y.to(dev)
        return CASES[case](lib, x, y)

    got = run(mg, device)
    assert got.device == mg.device(device)
    _same(got, run(torch, None))


@pytest.mark.parametrize("name", WIDE)
def test_mixing_with_another_integer_type_is_refused(device, name):
    x = mg.ones(3, dtype=getattr(mg, name), device=device)
    with pytest.raises(mg.errors.DTypeError, match=r"cast one side first"):
        x + mg.ones(3, dtype=mg.int64, device=device)


@pytest.mark.parametrize("name", WIDE)
def test_safetensors_round_trip(tmp_path, name):
    x = mg.tensor([0, 1, np.iinfo(name).max], dtype=getattr(mg, name))
    mg.save({"x": x}, tmp_path / "w.safetensors")
    back = mg.load(tmp_path / "w.safetensors")["x"]
    assert back.dtype is x.dtype and back.tolist() == x.tolist()


# ------------------------------------------------------------------- bitwise operators

BITWISE = {
    "a&1": lambda a, b, c: a & 1,
    "1&a": lambda a, b, c: 1 & a,
    "a|2": lambda a, b, c: a | 2,
    "3^a": lambda a, b, c: 3 ^ a,
    "~a": lambda a, b, c: ~a,
    "~b": lambda a, b, c: ~b,
    "b&c": lambda a, b, c: b & c,
    "b|c": lambda a, b, c: b | c,
    "b^c": lambda a, b, c: b ^ c,
    "True|b": lambda a, b, c: True | b,
    "b&a": lambda a, b, c: b & a,  # bool with int: the int type
    "a&True": lambda a, b, c: a & True,
    "a<<2": lambda a, b, c: a << 2,
    "a>>1": lambda a, b, c: a >> 1,  # arithmetic shift keeps the sign
    "2<<a": lambda a, b, c: 2 << a.abs(),
}


def _bitwise_inputs(lib, dev):
    a = lib.tensor([1, 2, 3, -4, 255])
    b = lib.tensor([True, False, True, False, True])
    c = lib.tensor([False, False, True, True, True])
    if dev is not None:
        a, b, c = a.to(dev), b.to(dev), c.to(dev)
    return a, b, c


@pytest.mark.parametrize("case", list(BITWISE))
def test_bitwise_operators_match_torch(device, case):
    _same(BITWISE[case](*_bitwise_inputs(mg, device)), BITWISE[case](*_bitwise_inputs(torch, None)))


def test_invert_unsigned_byte(device):
    got = ~mg.tensor([1, 200, 3], dtype=mg.uint8, device=device)
    _same(got, ~torch.tensor([1, 200, 3], dtype=torch.uint8))


@pytest.mark.parametrize("op", ["&=", "|=", "^=", "<<=", ">>="])
def test_inplace_bitwise_operators_match_torch(device, op):
    def run(lib, dev):
        x = lib.tensor([1, 6, -5])
        if dev is not None:
            x = x.to(dev)
        ref = x
        ns = {"x": x}
        exec(f"x {op} 3", ns)
        assert ns["x"] is ref  # in place
        return ns["x"]

    _same(run(mg, device), run(torch, None))


def test_bitwise_operators_refuse_floats(device):
    x = mg.ones(2, device=device)
    for f in (lambda: x & 1, lambda: x | x, lambda: ~x, lambda: x << 1):
        with pytest.raises(TypeError, match="floating"):
            f()


@pytest.mark.parametrize("dt", ["int8", "uint8", "int32", "bool"])
@pytest.mark.parametrize("fn", ["cumsum", "cumprod"])
def test_integer_scans_accumulate_in_int64(device, dt, fn):
    vals = [1, 0, 1, 1] if dt == "bool" else [3, 5, 7, 2]
    got = getattr(mg, fn)(mg.tensor(vals, dtype=getattr(mg, dt), device=device), 0)
    _same(got, getattr(torch, fn)(torch.tensor(vals, dtype=getattr(torch, dt)), 0))


@pytest.mark.parametrize("dt", ["int8", "uint8", "bool"])
def test_integer_prod_is_int64(device, dt):
    vals = [1, 1, 0] if dt == "bool" else [3, 5, 7]
    got = mg.tensor(vals, dtype=getattr(mg, dt), device=device).prod()
    _same(got, torch.tensor(vals, dtype=getattr(torch, dt)).prod())
