"""Compile kernel sources with NVRTC, without a GPU or a driver (``doctor --kernels``).

Uses ``cuda.bindings.nvrtc`` with the NVRTC library of the ``nvidia-cuda-nvrtc-cu12``
wheel (the ``gpu-compile`` extra): CuPy's own compiler asks the driver for the device's
architecture and so cannot run here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .registry import Kernel, kernels

ARCHS = ("sm_80", "sm_90")
EXTRA = "pip install 'manygrad[gpu-compile]' (cuda-bindings + nvidia-cuda-nvrtc-cu12)"


class CompilerMissingError(ImportError):
    """NVRTC or its Python bindings are not installed."""


@dataclass
class Result:
    kernel: str
    arch: str
    ok: bool
    error: str = ""
    cubin_bytes: int = 0

    def as_dict(self) -> dict:
        return {"kernel": self.kernel, "arch": self.arch, "ok": self.ok, "error": self.error}


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError as e:
        raise CompilerMissingError(f"cuda-bindings is not installed ({e}); {EXTRA}") from None
    try:
        err, major, minor = nvrtc.nvrtcVersion()
    except Exception as e:  # the library itself is missing
        raise CompilerMissingError(f"the NVRTC library cannot be loaded ({e}); {EXTRA}") from None
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise CompilerMissingError(f"NVRTC does not answer ({err}); {EXTRA}")
    return nvrtc


def version() -> str:
    """NVRTC's version, e.g. ``"12.9"``; raises ``CompilerMissingError`` without the extra."""
    _, major, minor = _nvrtc().nvrtcVersion()
    return f"{major}.{minor}"


def _log(nvrtc, prog) -> str:
    _, n = nvrtc.nvrtcGetProgramLogSize(prog)
    buf = b" " * n
    nvrtc.nvrtcGetProgramLog(prog, buf)
    return buf.rstrip(b"\x00 ").decode(errors="replace").strip()


@functools.lru_cache(maxsize=64)
def compile_kernel(kernel: Kernel, arch: str) -> Result:
    """Compile ``kernel`` to a cubin for ``arch`` (``"sm_90"``), instantiating every entry
    (remembered per kernel source and arch for the life of the process)."""
    nvrtc = _nvrtc()
    ok = nvrtc.nvrtcResult.NVRTC_SUCCESS
    err, prog = nvrtc.nvrtcCreateProgram(
        kernel.full_source().encode(), f"{kernel.name}.cu".encode(), 0, [], []
    )
    if err != ok:
        return Result(kernel.name, arch, False, f"nvrtcCreateProgram: {err}")
    try:
        for e in kernel.entries:
            (err,) = nvrtc.nvrtcAddNameExpression(prog, e.encode())
            if err != ok:
                return Result(kernel.name, arch, False, f"name expression {e}: {err}")
        opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17"]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        if err != ok:
            return Result(kernel.name, arch, False, _log(nvrtc, prog) or str(err))
        missing = []
        for e in kernel.entries:
            err, lowered = nvrtc.nvrtcGetLoweredName(prog, e.encode())
            if err != ok or not lowered:
                missing.append(e)
        if missing:
            return Result(kernel.name, arch, False, f"not instantiated: {', '.join(missing)}")
        err, size = nvrtc.nvrtcGetCUBINSize(prog)
        if err != ok or size == 0:
            return Result(kernel.name, arch, False, f"no cubin for {arch}: {err}")
        return Result(kernel.name, arch, True, cubin_bytes=int(size))
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def check_all(archs=ARCHS) -> list[Result]:
    """Compile every registered kernel for every arch; one :class:`Result` each."""
    return [compile_kernel(k, a) for k in kernels() for a in archs]
