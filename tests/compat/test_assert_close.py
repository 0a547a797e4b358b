"""``torch.testing.assert_close`` against PyTorch's own: the same inputs pass or fail alike,
with the same exception type and message (manygrad's names read as torch's): tensors,
NumPy arrays, Python and NumPy scalars, nested sequences and mappings (compared by key, a
dict against an OrderedDict too), every keyword (check_stride, check_dtype, check_device,
check_layout, equal_nan, allow_subclasses, msg)."""

from collections import OrderedDict

import numpy as np
import pytest

import manygrad as mg
from manygrad.compat.torch_testing import assert_close

torch = pytest.importorskip("torch")
NAN, INF = float("nan"), float("inf")


def _t(lib, vals, dt="float32"):
    return lib.tensor(vals, dtype=getattr(lib, dt))


# each case builds (actual, expected, keywords) with the library it is given
CASES = {
    "tensors-close": lambda lib: (_t(lib, [1.0, 0.1]), _t(lib, [1.0, 0.1]) * 1.0000001, {}),
    "tensors-far": lambda lib: (_t(lib, [1.0, 4, 5]), _t(lib, [1.0, 2, 3]), {}),
    "tensors-2d-index": lambda lib: (_t(lib, [[1.0, 4], [5, 6]]), _t(lib, [[1.0, 2], [3, 6]]), {}),
    "float64": lambda lib: (_t(lib, [1.0, 2], "float64"), _t(lib, [1.0, 2.1], "float64"), {}),
    "float16": lambda lib: (_t(lib, [1.0, 2], "float16"), _t(lib, [1.1, 2], "float16"), {}),
    "bfloat16": lambda lib: (_t(lib, [1.0, 2], "bfloat16"), _t(lib, [1.1, 2], "bfloat16"), {}),
    "bfloat16-nan": lambda lib: (
        _t(lib, [1.0, NAN, 3], "bfloat16"),
        _t(lib, [1.0, NAN, 2], "bfloat16"),
        {"equal_nan": True},
    ),
    "complex": lambda lib: (lib.tensor([1 + 1j, 2j]), lib.tensor([1 + 1j, 3j]), {}),
    "ints-equal-only": lambda lib: (_t(lib, [1, 4, 5], "int64"), _t(lib, [1, 2, 3], "int64"), {}),
    "uint8": lambda lib: (_t(lib, [1], "uint8"), _t(lib, [3], "uint8"), {}),
    "bools": lambda lib: (lib.tensor([True, False]), lib.tensor([True, True]), {}),
    "0d-is-a-scalar": lambda lib: (lib.tensor(0.1), lib.tensor(0.2), {}),
    "0d-int": lambda lib: (lib.tensor(3), lib.tensor(4), {}),
    "0d-bool": lambda lib: (lib.tensor(True), lib.tensor(False), {}),
    "0d-nan": lambda lib: (lib.tensor(NAN), lib.tensor(NAN), {}),
    "0d-nan-equal": lambda lib: (lib.tensor(NAN), lib.tensor(NAN), {"equal_nan": True}),
    "nan-equal-and-a-miss": lambda lib: (_t(lib, [NAN, 1]), _t(lib, [NAN, 2]), {"equal_nan": True}),
    "nan-unequal": lambda lib: (_t(lib, [3.0, NAN]), _t(lib, [1.0, 2]), {}),
    "inf": lambda lib: (_t(lib, [INF, 1]), _t(lib, [INF, 1]), {}),
    "inf-vs-minus-inf": lambda lib: (_t(lib, [INF, 1]), _t(lib, [-INF, 1]), {}),
    "zero-expected": lambda lib: (_t(lib, [1.0, 2]), _t(lib, [0.0, 2]), {}),
    "only-misses-count": lambda lib: (_t(lib, [1e6 + 1, 1.1]), _t(lib, [1e6, 1.0]), {}),
    "empty": lambda lib: (lib.ones(0), lib.ones(0), {}),
    "user-tolerances": lambda lib: (
        _t(lib, [1.0, 2]),
        _t(lib, [1.05, 2]),
        {"rtol": 0, "atol": 0.1},
    ),
    "zero-tolerances": lambda lib: (_t(lib, [1.0, 2]), _t(lib, [1.05, 2]), {"rtol": 0, "atol": 0}),
    "rtol-alone": lambda lib: (lib.zeros(2), lib.zeros(2), {"rtol": 1e-3}),
    "atol-alone": lambda lib: (lib.zeros(2), lib.zeros(2), {"atol": 1e-3}),
    "shape": lambda lib: (lib.zeros(2), lib.zeros(3), {}),
    "0d-vs-1d": lambda lib: (lib.tensor(1.0), lib.tensor([1.0]), {}),
    "dtype": lambda lib: (lib.zeros(2), _t(lib, [0.0, 0], "float64"), {}),
    "dtype-unchecked": lambda lib: (
        lib.zeros(2),
        _t(lib, [0, 0], "float64"),
        {"check_dtype": False},
    ),
    "dtype-unchecked-promoted": lambda lib: (
        _t(lib, [1, 2], "int64"),
        _t(lib, [1.0, 2.5]),
        {"check_dtype": False},
    ),
    "dtype-unchecked-widest-tolerance": lambda lib: (
        _t(lib, [1.0], "float16"),
        _t(lib, [1.0009], "float64"),
        {"check_dtype": False},
    ),
    "stride": lambda lib: (lib.zeros(2, 3), lib.zeros(3, 2).t(), {"check_stride": True}),
    "stride-unchecked": lambda lib: (lib.zeros(2, 3), lib.zeros(3, 2).t(), {}),
    "stride-before-dtype": lambda lib: (
        lib.zeros(2, 3),
        _t(lib, np.zeros((3, 2)), "float64").t(),
        {"check_stride": True},
    ),
    "view-stride": lambda lib: (
        lib.arange(6.0).reshape(2, 3)[:, 1],
        _t(lib, [1.0, 4]),
        {"check_stride": True},
    ),
    "layout": lambda lib: (lib.zeros(2).to_sparse(), lib.zeros(2), {}),
    "layout-unchecked": lambda lib: (
        lib.zeros(2).to_sparse(),
        lib.zeros(2),
        {"check_layout": False},
    ),
    "device-unchecked": lambda lib: (lib.zeros(2), lib.zeros(2), {"check_device": False}),
    "requires-grad": lambda lib: (lib.ones(2, requires_grad=True), lib.ones(2), {}),
    "parameter": lambda lib: (lib.nn.Parameter(lib.ones(2)), lib.ones(2), {}),
    "parameter-strict": lambda lib: (
        lib.nn.Parameter(lib.ones(2)),
        lib.ones(2),
        {"allow_subclasses": False},
    ),
    "numpy-arrays": lambda lib: (np.array([1.0, 2]), np.array([1.0, 2.1]), {}),
    "numpy-0d": lambda lib: (np.array(3.0), np.array(3.5), {}),
    "numpy-dtypes": lambda lib: (np.array([1.0], np.float32), np.array([1.0]), {}),
    "numpy-vs-tensor": lambda lib: (np.array([1.0]), _t(lib, [1.0]), {}),
    "tensor-vs-float": lambda lib: (lib.tensor(1.0), 1.0, {}),
    "list-vs-tensor": lambda lib: ([1.0], _t(lib, [1.0]), {}),
    "strings": lambda lib: ("a", "a", {}),
    "sets": lambda lib: ({1}, {1}, {}),
    "scalars-equal-only": lambda lib: (1e-9, 1e-10, {"rtol": 0, "atol": 0}),
    "scalars": lambda lib: (1.0, 1.1, {}),
    "scalar-ints": lambda lib: (1, 2, {}),
    "scalar-int-vs-zero": lambda lib: (1, 0, {}),
    "scalar-complex": lambda lib: (1 + 1j, 1 + 2j, {}),
    "scalar-nan": lambda lib: (NAN, NAN, {}),
    "scalar-nan-equal": lambda lib: (NAN, NAN, {"equal_nan": True}),
    "scalar-types": lambda lib: (1.0, 1, {}),
    "scalar-types-unchecked": lambda lib: (1.0, 1, {"check_dtype": False}),
    "scalar-types-unchecked-far": lambda lib: (1, 1.001, {"check_dtype": False}),
    "numpy-scalars": lambda lib: (np.float32(1.0), np.float32(1.1), {}),
    "numpy-scalar-vs-float": lambda lib: (np.float32(1.0), 1.0, {}),
    "numpy-int-scalars": lambda lib: (np.int64(1), np.int64(2), {}),
    "booleans": lambda lib: (True, False, {}),
    "numpy-booleans": lambda lib: (np.bool_(True), np.bool_(False), {}),
    "none": lambda lib: (None, None, {}),
    "none-vs-number": lambda lib: (None, 1, {}),
    "sequences": lambda lib: (
        (_t(lib, [1.0]), 2.0, np.array(3.0)),
        [_t(lib, [1.0]), 2.0, np.array(3.0)],
        {},
    ),
    "sequence-lengths": lambda lib: ([1.0, 2.0], [1.0], {}),
    "sequence-item": lambda lib: ([1.0, 2.0], [1.0, 3.0], {}),
    "nested-sequences": lambda lib: ([[1.0, 2.0]], [[1.0, 3.0]], {}),
    "sequence-vs-mapping": lambda lib: ([1.0], {"a": 1.0}, {}),
    "dict-vs-ordereddict": lambda lib: (
        {"baz": np.array(3.0), "bar": 2.0, "foo": lib.tensor(1.0)},
        OrderedDict([("foo", lib.tensor(1.0)), ("bar", 2.0), ("baz", np.array(3.0))]),
        {},
    ),
    "mapping-item": lambda lib: ({"a": 1.0, "b": 2.0}, OrderedDict(b=3.0, a=1.0), {}),
    "mapping-keys": lambda lib: ({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0}, {}),
    "mapping-int-keys": lambda lib: ({1: 1.0}, {2: 1.0}, {}),
    "mapping-nested": lambda lib: (
        {"a": [1.0, _t(lib, [2.0, 3])]},
        {"a": [1.0, _t(lib, [2.0, 4])]},
        {},
    ),
    "length-inside-mapping": lambda lib: ({"a": [1.0, 2.0]}, {"a": [1.0]}, {}),
    "attribute-inside-sequence": lambda lib: ((lib.zeros(2),), (_t(lib, [0.0, 0], "float64"),), {}),
    "msg": lambda lib: (_t(lib, [1.0, 4]), _t(lib, [1.0, 2]), {"msg": "Argh"}),
    "msg-callable": lambda lib: (
        _t(lib, [1.0, 4]),
        _t(lib, [1.0, 2]),
        {"msg": lambda text: f"Header\n\n{text}\n\nFooter"},
    ),
    "msg-replaces-attribute": lambda lib: (lib.zeros(3), lib.zeros(2), {"msg": "custom"}),
    "msg-callable-attribute": lambda lib: (lib.zeros(3), lib.zeros(2), {"msg": lambda s: f"<{s}>"}),
    "msg-replaces-location": lambda lib: ([1.0], [2.0], {"msg": "custom"}),
    "msg-callable-location": lambda lib: ([1.0], [2.0], {"msg": lambda s: f"<{s}>"}),
    "msg-not-for-lengths": lambda lib: ([1.0], [2.0, 3.0], {"msg": "custom"}),
    "msg-not-for-keys": lambda lib: ({"a": 1}, {"b": 1}, {"msg": "custom"}),
    "msg-not-for-types": lambda lib: ([1.0], 2.0, {"msg": "custom"}),
    "msg-scalars": lambda lib: (True, False, {"msg": "custom"}),
}


def _outcome(fn, actual, expected, kwargs):
    try:
        fn(actual, expected, **kwargs)
    except Exception as e:  # noqa: BLE001 - the outcome is what is compared
        text = str(e).replace("manygrad.tensor.Tensor", "torch.Tensor")
        return type(e).__name__, text.replace("manygrad.", "torch.")
    return None


@pytest.mark.parametrize("case", list(CASES))
def test_assert_close_matches_pytorch(case):
    want = _outcome(torch.testing.assert_close, *CASES[case](torch))
    got = _outcome(assert_close, *CASES[case](mg))
    assert got == want


def test_devices_are_checked_and_can_be_ignored():
    a, b = mg.ones(2, device="fakegpu"), mg.ones(2)
    with pytest.raises(AssertionError, match="attribute 'device' do not match: fakegpu != cpu"):
        assert_close(a, b)
    assert_close(a, b, check_device=False)
    with pytest.raises(AssertionError, match="Mismatched elements: 1 / 2"):
        assert_close(a, mg.tensor([1.0, 2.0], device="fakegpu:1"), check_device=False)


def test_negative_tolerances_are_refused():
    with pytest.raises(ValueError, match="rtol must be greater than or equal to zero"):
        assert_close(mg.ones(1), mg.ones(1), rtol=-1.0, atol=0.0)
