"""``manygrad doctor``: what works, what is missing for the GPU, and the exact fix.

Each check gives a line ``ok`` / ``warn`` / ``fail`` with what was found and, when it is
not ok, what to install or set. The exit code is non-zero when a check that the user
asked for (``--require cuda,mpi,...``) or a core requirement fails.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from dataclasses import dataclass, field

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    group: str = "core"
    extra: dict = field(default_factory=dict)


def _import(name: str):
    """Import a module by name (tests monkeypatch this to make a dependency disappear)."""
    return importlib.import_module(name)


def _version(mod) -> str:
    return str(getattr(mod, "__version__", getattr(mod, "VERSION", "?")))


def check_python() -> Check:
    v = sys.version_info
    detail = f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"
    if v < (3, 10):
        return Check("python", FAIL, detail, "manygrad needs Python >= 3.10")
    return Check("python", OK, detail)


def check_numpy() -> list[Check]:
    try:
        np = _import("numpy")
    except ImportError:
        return [Check("numpy", FAIL, "not installed", "pip install numpy")]
    out = [Check("numpy", OK, f"{np.__version__}")]
    blas = "unknown"
    try:
        cfg = np.show_config(mode="dicts")
        b = cfg.get("Build Dependencies", {}).get("blas", {})
        blas = f"{b.get('name', '?')} {b.get('version', '')}".strip()
    except Exception:
        pass
    threads = _blas_threads()
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS") if k in os.environ}  # fmt: skip
    detail = f"BLAS {blas}, {threads} thread(s), {os.cpu_count()} CPU(s)"
    if env:
        detail += f"; set: {', '.join(f'{k}={v}' for k, v in env.items())}"
    status, fix = OK, ""
    if isinstance(threads, int) and threads < (os.cpu_count() or 1) and env:
        status, fix = WARN, "BLAS uses fewer threads than CPUs: unset the *_NUM_THREADS variables"
    kernel = _blas_kernel()
    if kernel:
        detail += f", {kernel} kernels"
    notes = []
    if "OPENBLAS_CORETYPE" in os.environ:
        note = f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} picks the kernels by hand"
        if kernel and kernel.lower() in _AVX2_KERNELS and "avx512f" in _cpu_flags():
            # NOTE: measured on an AVX-512 CPU (AMD Zen 5, one thread): a 12544x64 @ 64x288
            # float32 product took 7.3 ms with OPENBLAS_CORETYPE=Haswell, 3.0 ms without
            note += " (this AVX-512 CPU then runs AVX2 code: matrix products ~2x slower)"
        notes.append(note)
    if "OPENBLAS_L2_SIZE" in os.environ:
        notes.append(f"OPENBLAS_L2_SIZE={os.environ['OPENBLAS_L2_SIZE']} overrides the cache "
                     "size OpenBLAS tunes for")  # fmt: skip
    if notes:
        status = WARN
        fix = "; ".join(notes) + "; unset them to let OpenBLAS detect this CPU"
    out.append(Check("blas", status, detail, fix))
    return out


_AVX2_KERNELS = ("haswell", "zen", "sandybridge", "nehalem", "core2", "prescott")


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _blas_kernel():
    from ..threads import blas_kernel

    return blas_kernel()


def _blas_threads():
    from ..threads import get_blas_threads

    n = get_blas_threads()
    return "?" if n is None else n


def check_ml_dtypes() -> Check:
    try:
        m = _import("ml_dtypes")
        return Check("ml_dtypes", OK, f"{_version(m)} (bfloat16)")
    except ImportError:
        return Check("ml_dtypes", FAIL, "not installed", "pip install ml_dtypes")


def check_cpu_kernels() -> Check:
    """The CPU kernels (``manygrad._native``): built with the system C compiler on first use."""
    from .. import _native

    st = _native.status()
    if st["available"]:
        return Check("cpu kernels", OK, f"built ({st['path']})", group="cpu-kernels")
    if "MANYGRAD_CPU_KERNELS" in (st["error"] or ""):
        return Check("cpu kernels", WARN, st["error"], "unset MANYGRAD_CPU_KERNELS to turn "
                     "them on", group="cpu-kernels")  # fmt: skip
    return Check(
        "cpu kernels",
        WARN,
        f"not built ({st['error']}): activations, norms, softmax, cross-entropy, max "
        "pooling and the Adam step run as slower NumPy formulas",
        "install a C compiler (apt install gcc) or set CC",
        group="cpu-kernels",
    )


def _cuda_extra() -> str:
    return "pip install 'manygrad[cuda12]' (CUDA 12 drivers) or 'manygrad[cuda13]' (CUDA 13)"


def check_cuda(report: dict | None = None) -> list[Check]:
    """CuPy package, CUDA driver and runtime, each GPU, NVRTC and NCCL."""
    from ..cuda.report import cuda_report

    r = cuda_report() if report is None else report
    g = "cuda"
    if r.get("cupy") is None:
        err = r.get("import_error") or "not installed"
        missing = "No module named 'cupy'" in err or err == "not installed"
        return [Check("cupy", FAIL if not missing else WARN,
                      "not installed" if missing else f"fails to import: {err}",
                      _cuda_extra() if missing else "reinstall the CuPy wheel for your CUDA "
                      "version: " + _cuda_extra(), g)]  # fmt: skip
    out = [Check("cupy", OK, f"{r['cupy']}", group=g)]
    if not r.get("driver_present", True):
        out.append(Check("driver", FAIL, "no NVIDIA driver found (libcuda missing)",
                         "install the NVIDIA driver; `nvidia-smi` must work", g))  # fmt: skip
        return out
    rt, drv = r.get("runtime"), r.get("driver")
    if rt is not None and drv is not None:
        detail = f"driver supports CUDA {_cuda_ver(drv)}, CuPy built for CUDA {_cuda_ver(rt)}"
        if drv < rt:
            out.append(Check("driver", FAIL, detail, "update the NVIDIA driver, or install "
                             "the CuPy build for the older CUDA: " + _cuda_extra(), g))  # fmt: skip
        else:
            out.append(Check("driver", OK, detail, group=g))
    elif "device_error" in r or "driver_error" in r:
        out.append(Check("driver", FAIL, r.get("device_error") or r.get("driver_error"),
                         "check `nvidia-smi`; reinstall the driver", g))  # fmt: skip
    gpus = r.get("gpus", [])
    if not gpus:
        out.append(Check("gpu", FAIL, "no GPU visible", "check CUDA_VISIBLE_DEVICES and "
                         "`nvidia-smi`", g))  # fmt: skip
    for d in gpus:
        if "error" in d:
            out.append(Check(f"cuda:{d['index']}", FAIL, d["error"], "see `nvidia-smi`", g))
            continue
        out.append(Check(
            f"cuda:{d['index']}", OK,
            f"{d['name']}, {d['memory_gb']:.1f} GiB, compute capability "
            f"{d['compute_capability']}, {d['clock_mhz']:.0f} MHz core, "
            f"{d['memory_clock_mhz']:.0f} MHz memory", group=g))  # fmt: skip
    if gpus:
        if "nvrtc_error" in r:
            out.append(Check("nvrtc", FAIL, r["nvrtc_error"], "CuPy compiles kernels with "
                             "NVRTC: reinstall the CuPy wheel (it ships NVRTC) or install the "
                             "CUDA toolkit", g))  # fmt: skip
        else:
            out.append(Check("nvrtc", OK, "kernels compile and run", group=g))
    if r.get("nccl"):
        out.append(Check("nccl", OK, f"version {r['nccl']}", group="nccl"))
    else:
        out.append(Check("nccl", WARN, r.get("nccl_error") or "not available",
                         "for multi-GPU training: pip install nvidia-nccl-cu12 (or -cu13), "
                         "included in the manygrad[cuda12]/[cuda13] extras", "nccl"))  # fmt: skip
    return out


def _cuda_ver(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def check_mpi() -> Check:
    try:
        mpi4py = _import("mpi4py")
    except ImportError:
        return Check("mpi", WARN, "mpi4py not installed",
                     "for multi-process training: pip install 'manygrad[mpi]' (mpi4py + "
                     "MPICH), or mpi4py alone to use your cluster's MPI", "mpi")  # fmt: skip
    try:
        MPI = _import("mpi4py.MPI")  # noqa: N806
        lib = MPI.Get_library_version().strip().splitlines()[0]
        return Check("mpi", OK, f"mpi4py {_version(mpi4py)}, {lib}", group="mpi")
    except Exception as e:
        return Check("mpi", FAIL, f"mpi4py {_version(mpi4py)} cannot load MPI: {e}",
                     "install an MPI library (pip install mpich) or point mpi4py at the "
                     "cluster's MPI (module load mpi; pip install --no-binary mpi4py mpi4py)",
                     "mpi")  # fmt: skip


OPTIONAL = [
    # module, what for, extra
    ("PIL", "image folders, predict on images", "images"),
    ("av", "video datasets", "video"),
    ("h5py", "HDF5 datasets", "science"),
    ("zarr", "Zarr datasets", "science"),
    ("tqdm", "progress bars", "progress"),
    ("tensorboard", "viewing the TensorBoard logs that every run writes", "logging"),
    ("matplotlib", "bench charts", "bench"),
    ("onnx", "ONNX export", "onnx"),
    ("onnxruntime", "running exported ONNX files", "onnx"),
    ("uvicorn", "manygrad serve", "serve"),
    ("starlette", "manygrad serve", "serve"),
]


def check_optional() -> list[Check]:
    out = []
    for mod, what, extra in OPTIONAL:
        try:
            m = _import(mod)
            out.append(Check(mod, OK, f"{_version(m)} ({what})", group=mod))
        except ImportError:
            fix = f"pip install 'manygrad[{extra}]'"
            if mod == "tensorboard":  # NOTE: runs write event files without any package
                fix += " (or pip install tensorboard); then: tensorboard --logdir runs"
            out.append(Check(mod, WARN, f"not installed ({what})", fix, mod))
    return out


def run_checks() -> list[Check]:
    checks = [check_python(), *check_numpy(), check_ml_dtypes(), check_cpu_kernels(),
              *check_cuda(), check_mpi()]  # fmt: skip
    return checks + check_optional()


REQUIRABLE = {"cuda", "nccl", "mpi", "PIL", "av", "h5py", "zarr", "tqdm", "tensorboard",
              "matplotlib", "onnx"}  # fmt: skip


def mark_required(checks: list[Check], required: set[str]) -> list[Check]:
    """A check asked for with ``--require`` that does not pass is shown as FAIL."""
    for c in checks:
        if c.group in required and c.status != OK:
            c.status = FAIL
            c.detail += " (required by --require)"
    return checks


def exit_code(checks: list[Check], required: set[str]) -> int:
    for c in checks:
        if c.status == FAIL and (c.group == "core" or c.group in required):
            return 1
        if c.status != OK and c.group in required:
            return 1
    return 0


def format_checks(checks: list[Check], color: bool = False) -> str:
    marks = {OK: "ok  ", WARN: "warn", FAIL: "FAIL"}
    colors = {OK: "\033[32m", WARN: "\033[33m", FAIL: "\033[31m"}
    lines = []
    for c in checks:
        mark = marks[c.status]
        if color:
            mark = f"{colors[c.status]}{mark}\033[0m"
        lines.append(f"{mark}  {c.name:<12} {c.detail}")
        if c.fix:
            lines.append(f"      {'':<12} fix: {c.fix}")
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="check the installation: GPU, CUDA, packages",
                              description=__doc__)  # fmt: skip
    p.add_argument("--require", default="", help="comma-separated checks that must pass "
                   f"(exit 1 otherwise): {', '.join(sorted(REQUIRABLE))}")  # fmt: skip
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--kernels", action="store_true", help="compile every fused kernel with "
                   "NVRTC for sm_80 and sm_90 (no GPU needed; the gpu-compile extra)")  # fmt: skip


def fast_path_lines() -> list[str]:
    """One line per GPU fast path: its state (verified / unverified / unavailable)."""
    from .. import kernels

    rows = kernels.fastpath.report()
    reasons = {r["reason"] for r in rows if r["state"] == "unavailable"}
    lines = []
    for r in rows:
        on = "on " if r["enabled"] else "off"
        why = "" if r["state"] == "unavailable" and len(reasons) == 1 else f" ({r['reason']})"
        lines.append(f"  {r['state']:<11} {on}  {r['name']:<34} {r['what']}{why}")
    if len(reasons) == 1:
        lines.append(f"  unavailable: {reasons.pop()}")
    return lines


def run_kernels(as_json: bool) -> int:
    """``doctor --kernels``: compile every kernel for each arch; 1 if any fails."""
    from ..kernels import nvrtc

    try:
        ver = nvrtc.version()
    except nvrtc.CompilerMissingError as e:
        print(f"manygrad doctor --kernels: {e}", file=sys.stderr)
        return 1
    results = nvrtc.check_all()
    if as_json:
        import json

        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(f"NVRTC {ver}: {len({r.kernel for r in results})} fused kernels")
        for r in results:
            mark = "ok  " if r.ok else "FAIL"
            detail = f"cubin {r.cubin_bytes} bytes" if r.ok else r.error.splitlines()[0]
            print(f"{mark}  {r.kernel:<14} {r.arch}  {detail}")
            if not r.ok:
                print("\n".join("      " + line for line in r.error.splitlines()[1:20]))
    return 0 if all(r.ok for r in results) else 1


def run(args) -> int:
    if getattr(args, "kernels", False):
        return run_kernels(args.json)
    required = {r.strip() for r in args.require.split(",") if r.strip()}
    unknown = required - REQUIRABLE
    if unknown:
        print(f"manygrad doctor: unknown --require {', '.join(sorted(unknown))}; choose from "
              f"{', '.join(sorted(REQUIRABLE))}", file=sys.stderr)  # fmt: skip
        return 2
    checks = mark_required(run_checks(), required)
    if args.json:
        import json

        from .. import kernels

        for r in kernels.fastpath.report():
            status = OK if r["state"] == "verified" else WARN
            checks.append(Check(r["name"], status, f"{r['state']}: {r['reason']}",
                                group="fastpath", extra={"enabled": r["enabled"]}))  # fmt: skip
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        print(format_checks(checks, color=sys.stdout.isatty()))
        print("\nGPU fast paths (state, on/off, name):")
        print("\n".join(fast_path_lines()))
        from .. import cuda

        if not cuda.is_available():
            why = cuda.why_unavailable().replace(" See `manygrad doctor`.", "")
            print(f"\nGPU: not usable — {why}")
        else:
            print(f"\nGPU: {cuda.device_count()} usable; manygrad will use cuda:0 by default")
    return exit_code(checks, required)
