"""GPU sensor readings through NVML (``nvidia-ml-py``): ``utilization``, ``memory_usage``,
``temperature``, ``power_draw``, ``clock_rate`` and ``list_gpu_processes``, as PyTorch reads
them. Without the package, or without a driver, they raise (``list_gpu_processes`` answers)
what PyTorch raises there.

Example:
    >>> mg.cuda.utilization()  # percent of the last sample period a kernel ran
"""

from __future__ import annotations

import os

_NO_PYNVML = "nvidia-ml-py does not seem to be installed or it can't be imported."
_NO_DRIVER = "cuda driver can't be loaded, is cuda enabled?"


def _pynvml():
    try:
        import pynvml  # noqa: PLC0415 - optional
    except ImportError as e:
        raise ModuleNotFoundError(_NO_PYNVML) from e
    return pynvml


def _index(device) -> int:
    """The NVML index of ``device`` (None: the current GPU), through CUDA_VISIBLE_DEVICES
    when it lists GPU numbers."""
    from . import current_device

    if device is None:
        idx = current_device()
    elif isinstance(device, int):
        idx = device
    else:
        from .. import backend

        idx = backend.device(device).index or 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        parts = [p.strip() for p in visible.split(",") if p.strip()]
        if all(p.isdigit() for p in parts):
            if not 0 <= idx < len(parts):
                raise RuntimeError(f"device {idx} is not visible (CUDA_VISIBLE_DEVICES={visible})")
            return int(parts[idx])
    return idx


def _handle(device):
    nv = _pynvml()
    try:
        nv.nvmlInit()
    except nv.NVMLError_DriverNotLoaded as e:
        raise RuntimeError(_NO_DRIVER) from e
    return nv, nv.nvmlDeviceGetHandleByIndex(_index(device))


def utilization(device=None) -> int:
    """Percent of the last sample period during which a kernel ran on the GPU."""
    nv, h = _handle(device)
    return nv.nvmlDeviceGetUtilizationRates(h).gpu


def memory_usage(device=None) -> int:
    """Percent of the last sample period during which GPU memory was read or written."""
    nv, h = _handle(device)
    return nv.nvmlDeviceGetUtilizationRates(h).memory


def temperature(device=None) -> int:
    """The GPU die's temperature in degrees Celsius."""
    nv, h = _handle(device)
    return nv.nvmlDeviceGetTemperature(h, 0)  # NOTE: sensor 0 is the GPU die


def power_draw(device=None) -> int:
    """The GPU's average power draw over the last sample period, in milliwatts."""
    nv, h = _handle(device)
    return nv.nvmlDeviceGetPowerUsage(h)


def clock_rate(device=None) -> int:
    """The GPU's streaming-multiprocessor clock in MHz."""
    nv, h = _handle(device)
    return nv.nvmlDeviceGetClockInfo(h, 1)  # NOTE: clock 1 is NVML_CLOCK_SM


def list_gpu_processes(device=None) -> str:
    """The processes using the GPU and their memory, one line each, for printing."""
    try:
        nv = _pynvml()
    except ModuleNotFoundError:
        return "pynvml module not found, please install nvidia-ml-py"
    try:
        nv.nvmlInit()
    except nv.NVMLError_DriverNotLoaded:
        return _NO_DRIVER
    idx = _index(device)
    procs = nv.nvmlDeviceGetComputeRunningProcesses(nv.nvmlDeviceGetHandleByIndex(idx))
    lines = [f"GPU:{idx}"]
    if not procs:
        lines.append("no processes are running")
    for p in procs:
        lines.append(f"process {p.pid:>10d} uses {p.usedGpuMemory / 2**20:>12.3f} MB GPU memory")
    return "\n".join(lines)
