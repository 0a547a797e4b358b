"""Build a kernel's source with the host C++ compiler into a shared library (ctypes).

The prelude turns ``__device__`` math into ``static inline`` functions and each source's
host harness exports serial loops over the same bodies the GPU skeleton calls.
"""

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
_LIBS: dict = {}


def build(kernel):
    """The kernel's host library (cached per source); skips the test without a compiler."""
    if CXX is None:
        pytest.skip("no C++ compiler (g++) to build the kernels' math bodies for the CPU")
    src = kernel.full_source()
    key = hashlib.sha256(src.encode()).hexdigest()[:16]
    if key in _LIBS:
        return _LIBS[key]
    d = tempfile.mkdtemp(prefix="mg-kernels-")
    cpp, so = os.path.join(d, f"{kernel.name}.cpp"), os.path.join(d, f"{kernel.name}.so")
    with open(cpp, "w") as f:
        f.write(src)
    # NOTE: no contraction into FMAs, so the float32 operations round as NumPy's do
    cmd = [CXX, "-O2", "-ffp-contract=off", "-fno-fast-math", "-std=c++17", "-shared",
           "-fPIC", "-x", "c++", cpp, "-o", so, "-lm"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{kernel.name}: host build failed:\n{r.stderr}"
    lib = _LIBS[key] = ctypes.CDLL(so)
    return lib


def ptr(a):
    """A ctypes pointer to a C-contiguous array (None -> NULL)."""
    if a is None:
        return None
    assert a.flags.c_contiguous
    return ctypes.c_void_p(a.ctypes.data)


SUFFIX = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}


def call(lib, name, dtype, *args):
    """Call ``name_<suffix of dtype>`` with arrays as pointers, ints as long long/int."""
    fn = getattr(lib, f"{name}_{SUFFIX[str(np.dtype(dtype))]}" if dtype is not None else name)
    conv = []
    for a in args:
        if a is None or isinstance(a, np.ndarray):
            conv.append(ptr(a))
        elif isinstance(a, Long):
            conv.append(ctypes.c_longlong(int(a)))
        elif isinstance(a, int):
            conv.append(ctypes.c_int(a))
        elif isinstance(a, float):
            conv.append(ctypes.c_float(a))
        else:
            raise TypeError(type(a))
    fn.restype = None
    fn(*conv)


class Long(int):
    """An int passed as ``long long``."""
