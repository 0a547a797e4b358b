"""repr(tensor) laid out as PyTorch prints it, compared with PyTorch's own output."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

RS = np.random.RandomState(0)
CASES = {
    "fixed": [0.5, 1.0],
    "int_valued_floats": [1.0, 2.0, 3.0],
    "zeros": [0.0, 0.0],
    "nonfinite": [float("nan"), 0.6931, -float("inf")],
    "scalar_int_valued": 3.0,
    "scalar": 0.6931,
    "small_is_sci": [1e-5, 1.0],
    "large_is_sci": [1e9, 1.0],
    "wide_range": [123456.789, 1.5],
    "ints_2d": [[1, 2], [3, 4]],
    "bools": [True, False],
    "floats_2d": [[1.5, -2.25], [3.0, 4.0]],
    "randn_3d": RS.randn(2, 3, 4).astype(np.float32),
    "wraps_lines": RS.randn(40).astype(np.float32),
    "summarised_2d": RS.randn(50, 60).astype(np.float32),
    "summarised_3d": RS.randn(11, 12, 13).astype(np.float32),
    "summarised_1d_ints": np.arange(2000),
    "negative_zero": [-0.0, 1.0],
    "tiny": RS.randn(100).astype(np.float32) * 1e-3,
    "huge_and_nan": [1e20, float("nan")],
    "int_scalar": 5,
    "bool_scalar": True,
    "long_rows": RS.randn(3, 300).astype(np.float32),
    "int_sci": [100.0, 200000.0],
    "ints_wrap": RS.randint(-1000, 1000, size=(30,)),
    "complex": [1 + 2j, 3 - 4.5j],
}


def _norm(s: str) -> str:
    for a, b in (("torch.", ""), ("manygrad.", ""), ("Backward0", "Backward"),
                 ("Backward1", "Backward")):  # fmt: skip
        s = s.replace(a, b)
    return s


@pytest.mark.parametrize("case", list(CASES))
def test_repr_matches_torch(case):
    assert _norm(repr(mg.tensor(CASES[case]))) == _norm(repr(torch.tensor(CASES[case])))


@pytest.mark.parametrize("dtype", ["int8", "float16", "bfloat16", "float64", "uint8"])
def test_dtype_suffix_matches_torch(dtype):
    v = [1.5, 2.0, 3.25]
    got = repr(mg.tensor(v, dtype=getattr(mg, dtype)))
    assert _norm(got) == _norm(repr(torch.tensor(v, dtype=getattr(torch, dtype))))


@pytest.mark.parametrize("make", [
    lambda lib: lib.zeros(0), lambda lib: lib.zeros(0, 3), lambda lib: lib.zeros(0, dtype=lib.int64),
    lambda lib: lib.tensor([[1.0, 2.0]], requires_grad=True),
    lambda lib: lib.tensor([1.0, 2.0], requires_grad=True) * 2,
    lambda lib: lib.nn.Parameter(lib.ones(2)),
])  # fmt: skip
def test_suffixes_match_torch(make):
    assert _norm(repr(make(mg))) == _norm(repr(make(torch)))


def test_summarised_device_tensor_keeps_its_device_suffix():
    x = mg.arange(5000.0, device="fakegpu")
    text = repr(x)
    assert text.endswith("device='fakegpu')") and "..." in text
    assert _norm(text.replace(", device='fakegpu'", "")) == _norm(repr(torch.arange(5000.0)))


@pytest.mark.parametrize("opts", [
    {"precision": 2}, {"sci_mode": True}, {"linewidth": 40}, {"threshold": 5, "edgeitems": 1},
    {"profile": "short"}, {"profile": "full"},
])  # fmt: skip
def test_set_printoptions_matches_torch(opts):
    v = RS.randn(4, 9).astype(np.float32)
    try:
        mg.set_printoptions(**opts)
        torch.set_printoptions(**opts)
        assert _norm(repr(mg.tensor(v))) == _norm(repr(torch.tensor(v)))
    finally:
        mg.set_printoptions(profile="default", sci_mode=None)
        torch.set_printoptions(profile="default", sci_mode=None)
