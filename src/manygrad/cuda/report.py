"""What CuPy, the CUDA driver and runtime, the GPUs, NVRTC and NCCL report, for
``manygrad doctor`` and the benchmark report's header."""

from __future__ import annotations

import importlib

from .. import backend


def cuda_report() -> dict:
    """What CuPy, CUDA and the GPUs report, for ``manygrad doctor`` (never raises)."""
    info: dict = {"cupy": None, "import_error": None, "gpus": []}
    if backend._load_cupy() is None:
        info["import_error"] = (
            None if backend._CUPY_IMPORT_ERROR is None else str(backend._CUPY_IMPORT_ERROR)
        )
        return info
    cp = backend._cupy
    info["cupy"] = cp.__version__
    info["driver_present"] = backend._driver_present()
    rt = cp.cuda.runtime
    for key, fn in (("runtime", rt.runtimeGetVersion), ("driver", rt.driverGetVersion)):
        try:
            info[key] = fn()
        except Exception as e:
            info[key + "_error"] = str(e)
    if not info["driver_present"]:
        return info
    try:
        n = rt.getDeviceCount()
    except Exception as e:
        info["device_error"] = str(e)
        return info
    for i in range(n):
        try:
            p = rt.getDeviceProperties(i)
            info["gpus"].append({
                "index": i,
                "name": p["name"].decode() if isinstance(p["name"], bytes) else p["name"],
                "memory_gb": p["totalGlobalMem"] / 2**30,
                "compute_capability": f"{p['major']}.{p['minor']}",
                "clock_mhz": p.get("clockRate", 0) / 1000,
                "memory_clock_mhz": p.get("memoryClockRate", 0) / 1000,
                "multiprocessors": p.get("multiProcessorCount"),
            })  # fmt: skip
        except Exception as e:
            info["gpus"].append({"index": i, "error": str(e)})
    try:  # NVRTC: compile and run a tiny kernel
        k = cp.ElementwiseKernel("float32 x", "float32 y", "y = x * 2", "mg_doctor_probe")
        ok = float(k(cp.ones(2, cp.float32)).sum()) == 4.0
        info["nvrtc"] = "ok" if ok else "wrong result"
    except Exception as e:
        info["nvrtc_error"] = str(e)
    try:
        nccl = importlib.import_module(cp.__name__ + ".cuda.nccl")

        info["nccl"] = nccl.get_version() if nccl.available else None
        if not nccl.available:
            info["nccl_error"] = "cupy.cuda.nccl is not available"
    except Exception as e:
        info["nccl_error"] = str(e)
    return info
