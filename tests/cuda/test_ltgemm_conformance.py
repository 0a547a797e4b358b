"""``ltgemm`` against the real nvmath-python cuBLASLt bindings' interface (no GPU needed).

The layout tests (``test_ltgemm.py``) run the path on a stand-in library. Here the
stand-in is held to the installed bindings: every call ``ltgemm`` makes must bind to the
real function's parameters, every enum member it names must exist with the value the
stand-in uses, every attribute buffer must have the dtype the bindings document for that
attribute, and the data and compute types ``ltgemm`` passes must be the library's codes.
So a renamed function, a changed arity or a wrong attribute width fails here, not on the
first GPU run.
"""

from __future__ import annotations

import inspect

import ml_dtypes
import numpy as np
import pytest
from test_ltgemm import LAYOUTS, FakeLt

from manygrad.cuda import ltgemm

L = pytest.importorskip("nvmath.bindings.cublasLt", reason="nvmath-python is not installed")
nvmath = pytest.importorskip("nvmath")

_ATTR_ENUM = {
    "matmul_desc_set_attribute": ("MatmulDescAttribute", "get_matmul_desc_attribute_dtype"),
    "matrix_layout_set_attribute": ("MatrixLayoutAttribute", "get_matrix_layout_attribute_dtype"),
    "matmul_preference_set_attribute": (
        "MatmulPreferenceAttribute",
        "get_matmul_preference_attribute_dtype",
    ),
}


class CheckedLt(FakeLt):
    """The stand-in with the real enums, each call bound to the real signature and each
    attribute buffer checked against the dtype the bindings give for it."""

    MatmulDescAttribute = L.MatmulDescAttribute
    MatrixLayoutAttribute = L.MatrixLayoutAttribute
    MatmulPreferenceAttribute = L.MatmulPreferenceAttribute
    Epilogue = L.Epilogue
    matmul_heuristic_result_dtype = L.matmul_heuristic_result_dtype

    def __init__(self):
        super().__init__()
        self.bound: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        real = getattr(L, name, None)
        if not callable(attr) or name.startswith("_") or not callable(real):
            return attr
        if isinstance(real, type):  # an enum class
            return attr
        sig = inspect.signature(real)
        bound, attrs = super().__getattribute__("bound"), super().__getattribute__("attrs")

        def checked(*args):
            sig.bind(*args)  # TypeError names the function when arity or names drift
            bound.append(name)
            if name in _ATTR_ENUM:
                enum_name, dtype_of = _ATTR_ENUM[name]
                _, which, buf, size = args
                member = getattr(L, enum_name)(int(which))
                want = np.dtype(getattr(L, dtype_of)(member))
                assert size == want.itemsize, f"{name}({member.name}): {size} bytes, want {want}"
                attrs.append((enum_name, member.name))
            return attr(*args)

        return checked


def test_the_stand_in_uses_the_bindings_enum_values_and_result_layout():
    for cls in ("MatmulDescAttribute", "MatrixLayoutAttribute", "MatmulPreferenceAttribute"):
        for member in getattr(FakeLt, cls):
            assert int(getattr(getattr(L, cls), member.name)) == int(member), (cls, member)
    assert int(L.Epilogue.BIAS) == int(FakeLt.Epilogue.BIAS)
    assert int(L.Epilogue.DEFAULT) == int(FakeLt.Epilogue.DEFAULT)
    real, fake = L.matmul_heuristic_result_dtype, FakeLt.matmul_heuristic_result_dtype
    assert real.itemsize == fake.itemsize  # same bytes; the bindings nest the algo's words
    for field in ("workspace_size", "state"):
        assert real.fields[field][1] == fake.fields[field][1], field
        assert real.fields[field][0] == fake.fields[field][0], field
    # the algorithm is the first member: ltgemm passes the result's address as the algo
    assert L.matmul_heuristic_result_dtype.fields["algo"][1] == 0
    for (kind, attr), dt in FakeLt._ATTR_DT.items():
        enum_name, dtype_of = {
            "desc": _ATTR_ENUM["matmul_desc_set_attribute"],
            "layout": _ATTR_ENUM["matrix_layout_set_attribute"],
            "pref": _ATTR_ENUM["matmul_preference_set_attribute"],
        }[kind]
        member = getattr(L, enum_name)(attr)
        assert np.dtype(getattr(L, dtype_of)(member)) == np.dtype(dt), (kind, member)


def test_data_and_compute_type_codes_are_the_librarys():
    cuda_t, compute_t = nvmath.CudaDataType, nvmath.bindings.cublas.ComputeType
    want = {
        "float32": (cuda_t.CUDA_R_32F, compute_t.COMPUTE_32F, cuda_t.CUDA_R_32F),
        "float64": (cuda_t.CUDA_R_64F, compute_t.COMPUTE_64F, cuda_t.CUDA_R_64F),
        "float16": (cuda_t.CUDA_R_16F, compute_t.COMPUTE_32F, cuda_t.CUDA_R_32F),
        "bfloat16": (cuda_t.CUDA_R_16BF, compute_t.COMPUTE_32F, cuda_t.CUDA_R_32F),
    }
    for name, (data, compute, scale) in want.items():
        dt, comp, scale_np, scale_code = ltgemm._TYPES[name]
        assert (dt, comp, scale_code) == (int(data), int(compute), int(scale)), name
        assert np.dtype(scale_np) == (np.float64 if name == "float64" else np.float32)
    assert ltgemm._COMPUTE_TF32 == int(compute_t.COMPUTE_32F_FAST_TF32)
    op = nvmath.bindings.cublas.Operation
    assert (ltgemm.OP_N, ltgemm.OP_T) == (int(op.N), int(op.T))


@pytest.mark.parametrize("name", ["contiguous", "b transposed view (Linear)", "batched"])
def test_every_call_binds_to_the_real_bindings(name):
    a, b = LAYOUTS[name]()
    lib = CheckedLt()
    ctx = ltgemm.LtContext(lib=lib)
    out = ltgemm.matmul(a, b, ctx=ctx, stream_ptr=0)
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5, atol=1e-5)
    for fn in ("create", "matmul_desc_create", "matrix_layout_create", "matmul_preference_create",
               "matmul_algo_get_heuristic", "matmul_preference_destroy", "matmul"):  # fmt: skip
        assert fn in lib.bound, fn
    assert ("MatmulDescAttribute", "TRANSA") in lib.attrs
    if a.ndim == 3:
        assert ("MatrixLayoutAttribute", "STRIDED_BATCH_OFFSET") in lib.attrs


def test_the_bias_epilogue_binds_with_its_pointer_width():
    x, w, bias = (np.ones(s, ml_dtypes.bfloat16) for s in ((4, 8), (3, 8), (3,)))
    lib = CheckedLt()
    out = ltgemm.matmul(x, w.T, bias, ctx=ltgemm.LtContext(lib=lib), stream_ptr=0)
    np.testing.assert_array_equal(out.astype(np.float32), np.full((4, 3), 9.0, np.float32))
    assert ("MatmulDescAttribute", "EPILOGUE") in lib.attrs
    assert ("MatmulDescAttribute", "BIAS_POINTER") in lib.attrs
