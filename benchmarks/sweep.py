"""Op sweep: find the ops and layouts where manygrad is much slower than PyTorch on the CPU.

The cases come from the project's op tables: every ``check_op(name, inputs, **kwargs)`` call
under tests/ (tests/opcheck.py's helper) is recorded by running those tests in-process under
pytest with ``check_op`` replaced by a recorder (tests that never call it are deselected, and
the device matrix is cut to the CPU). Each recorded call is then

- scaled up to a realistic size (``--size`` elements in its largest input, 256K by default):
  every dimension above 1 of every input is multiplied by one factor (index arrays and masks
  are tiled to match, bag offsets shifted with each copy of their ids); where the op rejects
  that (sizes named in its keywords), only the first dimension, then only the last, is
  scaled;
- run in layout variants: ``contig`` (as built), ``T`` (the last two dims of every float input
  a transposed view), ``slice`` (every other element of a wider last dim), ``expand`` (a
  stride-0 first dim), ``batch1`` (first dim 1) and ``i64`` (the float inputs as int64,
  forward only; skipped where PyTorch rejects it);
- timed forward (under no_grad) and forward + backward (against a fixed upstream gradient)
  in manygrad and in PyTorch in one process: process CPU time, one thread each, samples of
  at least ~1 ms alternating the two libraries, best of ``--repeats``.

The table is ranked by ratio = PyTorch time / manygrad time, slowest manygrad first (below 1:
manygrad is slower). Cases that fail to build are listed with the reason at the end
(``--show-skips``); a forward that differs from PyTorch's is flagged ``DIFF`` (random ops
differ by design).

Usage (from the repository root; the whole sweep took about an hour on a busy 2-core
machine, ``--exclude conv`` and ``--files`` shorten it)::

    PYTHONPATH=src python benchmarks/sweep.py --top 40
    PYTHONPATH=src python benchmarks/sweep.py --only gather --variants contig,T
    PYTHONPATH=src python benchmarks/sweep.py --files tests/ops/test_reduce.py --json out.json

Options: ``--only A,B`` (case label or test id contains one of them), ``--top N`` (rows
printed), ``--json PATH`` (every row), ``--size N``, ``--repeats N``, ``--variants a,b``, ``--no-backward``,
``--files PATH...`` (test files to record from; default all that call check_op),
``--show-skips``.
"""

from __future__ import annotations

import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # NOTE: before NumPy / PyTorch load their thread pools

import argparse  # noqa: E402
import glob  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import manygrad as mg  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
VARIANTS = ("contig", "T", "slice", "expand", "batch1", "i64")
# check_op's own options: everything else it is given goes to the op
OPTIONS = {"torch_fn", "kwargs_torch", "domain", "dtypes", "grad", "fd", "rtol", "atol",
           "seed", "devices", "double"}  # fmt: skip
MAX_CALL_S = 0.03  # a scaled case whose one call takes longer is built smaller


# ---------------------------------------------------------------- recording the op tables


class _Recorder:
    """A pytest plugin: ``opcheck.check_op`` records its arguments instead of checking."""

    def __init__(self):
        self.calls: list[dict] = []
        self._seen: set = set()
        self._node = ""

    def pytest_sessionstart(self, session):
        sys.path.insert(0, TESTS)
        import opcheck

        def record(name, specs, **kwargs):
            key = (repr(name) if not callable(name) else getattr(name, "__qualname__", ""),
                   repr(specs), repr(sorted(kwargs.items(), key=lambda kv: kv[0])))  # fmt: skip
            if key in self._seen:
                return
            self._seen.add(key)
            self.calls.append({"name": name, "specs": list(specs), "kwargs": kwargs,
                               "node": self._node})  # fmt: skip

        opcheck.check_op = record

    def pytest_collection_modifyitems(self, session, config, items):
        keep = []
        for item in items:
            fn = getattr(item, "function", None)
            try:
                uses = fn is not None and "check_op" in inspect.getsource(fn)
            except (OSError, TypeError):
                uses = False
            params = getattr(getattr(item, "callspec", None), "params", {})
            if uses and params.get("device", "cpu") == "cpu":
                keep.append(item)
        items[:] = keep

    def pytest_runtest_setup(self, item):
        self._node = item.nodeid.split("::", 1)[-1]


def record_calls(files: list[str]) -> list[dict]:
    """The check_op calls of ``files`` (test modules), each a dict name/specs/kwargs/node."""
    import pytest

    rec = _Recorder()
    os.chdir(ROOT)
    args = [*files, "-q", "--tb=no", "--no-header", "-p", "no:cacheprovider",
            "-p", "no:randomly", "-W", "ignore"]  # fmt: skip
    with open(os.devnull, "w") as null:
        old = sys.stdout
        sys.stdout = null
        try:
            pytest.main(args, plugins=[rec])
        finally:
            sys.stdout = old
    return rec.calls


def default_files() -> list[str]:
    out = []
    for path in sorted(glob.glob(os.path.join(TESTS, "**", "test_*.py"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            if "check_op(" in f.read():
                out.append(os.path.relpath(path, ROOT))
    return out


# ---------------------------------------------------------------- building a case


def _resolve(name, lib):
    if callable(name):
        return name
    for ns in (lib, lib.nn.functional):
        if hasattr(ns, name):
            return getattr(ns, name)
    return getattr(lib.Tensor, name)


def label(call) -> str:
    name = call["name"]
    if isinstance(name, str):
        return name
    q = getattr(name, "__qualname__", "") or getattr(name, "__name__", "fn")
    if "<lambda>" in q or "<locals>" in q:
        return (
            call["node"].split("[")[0].replace("test_", "")
            + ":"
            + call["node"][call["node"].find("[") :].strip("[]")
        )
    return q


def _scale_shape(shape, k, how):
    shape = list(shape)
    if not shape or k == 1:
        return tuple(shape)
    if how == "all":
        return tuple(d * k if d > 1 else d for d in shape)
    i = 0 if how == "first" else len(shape) - 1
    shape[i] = shape[i] * k if shape[i] > 1 else shape[i]
    return tuple(shape)


def _scale_const(a, k, how):
    if how != "all" or k == 1 or a.ndim == 0 or a.size == 0:
        return a
    return np.tile(a, [k if d > 1 else 1 for d in a.shape])


def _is_offsets(a, specs) -> bool:
    """Whether ``a`` reads as bag offsets (embedding_bag's): 1-d integers, non-decreasing
    from 0, beside a 1-d integer array at least as long as its last value (the ids)."""
    if not (isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in "iu" and a.size > 1):
        return False
    if a[0] != 0 or (np.diff(a) < 0).any():
        return False
    return any(isinstance(s, np.ndarray) and s is not a and s.ndim == 1 and s.dtype.kind in "iu"
               and s.size >= a[-1] and s.size > a.size for s in specs)  # fmt: skip


def scaled_specs(specs, k, how):
    out = []
    for s in specs:
        if isinstance(s, tuple) and all(isinstance(d, int) for d in s):
            out.append(_scale_shape(s, k, how))
        elif how == "all" and k > 1 and _is_offsets(s, specs):
            # NOTE: bags stay bags: each copy of the offsets starts where the ids' copy does
            # (tiled offsets would run backwards, an invalid input)
            n = max(x.size for x in specs if isinstance(x, np.ndarray) and x is not s
                    and x.ndim == 1 and x.dtype.kind in "iu")  # fmt: skip
            out.append(np.concatenate([s + c * n for c in range(k)]))
        elif isinstance(s, np.ndarray):
            out.append(_scale_const(s, k, how))
        else:
            out.append(s)
    return out


def _shapes(specs):
    return [s for s in specs if isinstance(s, tuple) and all(isinstance(d, int) for d in s)]


def _largest(specs) -> int:
    sizes = [math.prod(s) for s in _shapes(specs)]
    sizes += [s.size for s in specs if isinstance(s, np.ndarray)]
    return max(sizes, default=0)


def _factor(specs, how, target) -> int:
    base = _largest(specs)
    if base == 0:
        return 1
    k = 1
    while k < 4096 and _largest(scaled_specs(specs, k * 2, how)) <= target:
        k *= 2
    if _largest(scaled_specs(specs, k, how)) == base:
        return 1
    return k


class Case:
    """One op call at one size and layout, ready to run in both libraries."""

    def __init__(self, call, specs, variant, dtype):
        kw = call["kwargs"]
        self.mg_fn = _resolve(call["name"], mg)
        self.t_fn = kw.get("torch_fn") or _resolve(call["name"], torch)
        self.kw = {k: v for k, v in kw.items() if k not in OPTIONS}
        self.kw_t = kw["kwargs_torch"] if kw.get("kwargs_torch") is not None else self.kw
        self.specs, self.variant, self.dtype = specs, variant, dtype
        lo, hi = kw.get("domain", (-2.0, 2.0))
        rng = np.random.default_rng(0)
        self.arrays = []
        for s in specs:
            if isinstance(s, tuple) and all(isinstance(d, int) for d in s):
                a = rng.uniform(lo, hi, size=s)
                if variant == "i64":
                    a = np.floor(a).astype(np.int64)
                else:
                    a = a.astype(dtype)
                self.arrays.append(("grad", a))
            elif isinstance(s, np.ndarray):
                self.arrays.append(("const", s))
            else:
                self.arrays.append(("value", s))

    def inputs(self, lib, grad):
        out = []
        for kind, a in self.arrays:
            if kind == "value":
                out.append(a)
                continue
            if kind == "const":
                out.append(torch.from_numpy(np.array(a)) if lib is torch else mg.tensor(a))
                continue
            t = _layout(lib, a, self.variant)
            if grad and a.dtype.kind == "f":
                t = t.detach().requires_grad_(True)
            out.append(t)
        return out


def _layout(lib, a, variant):
    """``a`` as a tensor of ``lib`` with the variant's strides (same values for both)."""
    make = torch.from_numpy if lib is torch else mg.tensor
    if variant == "T" and a.ndim >= 2:
        return make(np.ascontiguousarray(np.swapaxes(a, -1, -2))).transpose(-1, -2)
    if variant == "slice" and a.ndim >= 1 and a.size:
        wide = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
        wide[..., ::2] = a
        return make(wide)[..., ::2]
    if variant == "expand" and a.ndim >= 1 and a.shape[0] > 1:
        return make(np.ascontiguousarray(a[:1])).expand(*a.shape)
    return make(np.array(a))


def _flat(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _np(t):
    if isinstance(t, torch.Tensor):
        t = t.detach()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.resolve_conj().resolve_neg().numpy()
    if isinstance(t, mg.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


class _Runner:
    """Forward (no_grad) or forward + backward of one case in one library."""

    def __init__(self, case, lib, backward):
        self.lib, self.backward = lib, backward
        self.fn = case.t_fn if lib is torch else case.mg_fn
        self.kw = case.kw_t if lib is torch else case.kw
        self.ins = case.inputs(lib, backward)
        self.leaves = [t for t in self.ins if isinstance(t, lib.Tensor) and t.requires_grad]
        self.ups = None
        if backward:
            outs = [o for o in _flat(self.fn(*self.ins, **self.kw))
                    if isinstance(o, lib.Tensor) and o.requires_grad]  # fmt: skip
            if not outs or not self.leaves:
                raise _SkipError("no gradient")
            rng = np.random.default_rng(1)
            self.ups = [rng.standard_normal(tuple(o.shape)).astype(_np(o).dtype) for o in outs]

    def __call__(self):
        lib = self.lib
        if not self.backward:
            with lib.no_grad():
                return self.fn(*self.ins, **self.kw)
        for t in self.leaves:
            t.grad = None
        outs = [o for o in _flat(self.fn(*self.ins, **self.kw))
                if isinstance(o, lib.Tensor) and o.requires_grad]  # fmt: skip
        ups = [lib.tensor(u) if lib is mg else torch.from_numpy(u) for u in self.ups]
        lib.autograd.backward(outs, ups)
        return outs


class _SkipError(Exception):
    pass


def _once(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _sample(fn, n) -> float:
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n


def time_pair(a, b, repeats) -> tuple[float, float]:
    """Best per-call CPU time (s) of ``a`` and ``b``, samples alternating."""
    ta, tb = _once(a), _once(b)  # warm-up (and first estimate)
    na = max(1, min(2000, int(0.001 / max(ta, 1e-7))))
    nb = max(1, min(2000, int(0.001 / max(tb, 1e-7))))
    best_a = best_b = float("inf")
    for _ in range(repeats):
        best_a = min(best_a, _sample(a, na))
        best_b = min(best_b, _sample(b, nb))
    return best_a, best_b


def _close(m_out, t_out) -> bool:
    m, t = _flat(m_out), _flat(t_out)
    if len(m) != len(t):
        return False
    for x, y in zip(m, t):
        x, y = _np(x), _np(y)
        if x.shape != y.shape:
            return False
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            scale = float(np.nanmax(np.abs(y))) if y.size else 0.0
            if not np.allclose(x, y, rtol=2e-3, atol=2e-3 * max(scale, 1.0), equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


# ---------------------------------------------------------------- the sweep


def _build_scaled(call, dtype, target):
    """(specs, how) of the largest scaling both libraries accept, checked forward."""
    specs = call["specs"]
    for how in ("all", "first", "last"):
        k = _factor(specs, how, target)
        if k == 1 and how != "all":
            continue
        for _ in range(4):
            cand = scaled_specs(specs, k, how)
            try:
                case = Case(call, cand, "contig", dtype)
                rt, rm = _Runner(case, torch, False), _Runner(case, mg, False)
                tm, got = _time_out(rm)  # NOTE: manygrad first, as in _measure
                tt, want = _time_out(rt)
            except Exception:  # noqa: BLE001 - any failure: try the next scaling
                break
            big = sum(getattr(o, "numel", lambda: 0)() for o in _flat(want)) > 16 * target
            if (max(tt, tm) > MAX_CALL_S or big) and k > 1:
                k = max(1, k // 4)
                continue
            if not _same_shapes(got, want):
                break
            return cand, how, k
    return specs, "none", 1


def _time_out(runner):
    t0 = time.process_time()
    out = runner()
    return time.process_time() - t0, out


def _same_shapes(a, b):
    a, b = _flat(a), _flat(b)
    return len(a) == len(b) and all(
        tuple(getattr(x, "shape", ())) == tuple(getattr(y, "shape", ())) for x, y in zip(a, b)
    )


def _variant_specs(specs, variant, consts_first_dim):
    if variant != "batch1":
        return specs
    shapes = _shapes(specs)
    if not shapes or not shapes[0] or shapes[0][0] <= 1:
        return None
    n = shapes[0][0]
    out = []
    for s in specs:
        if isinstance(s, tuple) and s in shapes and s and s[0] == n:
            out.append((1, *s[1:]))
        elif isinstance(s, np.ndarray) and consts_first_dim and s.ndim and s.shape[0] == n:
            out.append(s[:1])
        elif isinstance(s, np.ndarray) and s.dtype.kind in "iu" and s.size:
            # NOTE: index arrays made for the full batch may point past a batch of one, and
            # some PyTorch kernels do not check (segment_reduce's offsets corrupted the heap)
            return None
        else:
            out.append(s)
    return out


def _applies(specs, variant) -> bool:
    shapes = _shapes(specs)
    if variant == "T":
        return any(len(s) >= 2 and s[-1] > 1 and s[-2] > 1 for s in shapes)
    if variant == "slice":
        return any(len(s) >= 1 and s[-1] > 1 for s in shapes)
    if variant == "expand":
        return any(len(s) >= 1 and s[0] > 1 for s in shapes)
    return True


def _unsafe(call) -> bool:
    """Whether the call passes ``unsafe=True`` (also from a test lambda's closure): its
    inputs go unchecked, and scaled ones would make PyTorch write past its arrays."""
    if call["kwargs"].get("unsafe") is True:
        return True
    for fn in (call["name"], call["kwargs"].get("torch_fn")):
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                v = cell.cell_contents
            except ValueError:
                continue
            if isinstance(v, dict) and v.get("unsafe") is True:
                return True
    return False


def sweep(calls, args):
    rows, skips = [], []
    variants = args.variants.split(",")
    for i, call in enumerate(calls):
        name = label(call)
        only = [x for x in args.only.split(",") if x]
        if only and not any(x in name or x in call["node"] for x in only):
            continue
        if any(x and (x in name or x in call["node"]) for x in args.exclude.split(",")):
            continue
        t_call = time.time()
        dtypes = call["kwargs"].get("dtypes", ("float64", "float32"))
        dtype = "float32" if "float32" in dtypes else dtypes[0]
        if call["kwargs"].get("devices") and "cpu" not in call["kwargs"]["devices"]:
            continue
        if _unsafe(call):
            skips.append((name, "scale", "unsafe=True: inputs unchecked, not scaled"))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                specs, how, k = _build_scaled(call, dtype, args.size)
            except Exception as e:  # noqa: BLE001
                skips.append((name, "scale", repr(e)[:120]))
                continue
            if how == "none":
                skips.append((name, "scale", "no scaled form runs in both libraries"))
                continue
            for variant in variants:
                vspecs = _variant_specs(specs, variant, how == "all")
                if vspecs is None or not _applies(vspecs, variant):
                    continue
                modes = [False]
                if variant != "i64" and not args.no_backward and call["kwargs"].get("grad", True):
                    modes.append(True)
                for backward in modes:
                    row = _measure(call, name, vspecs, variant, dtype, backward, args, skips)
                    if row is not None:
                        rows.append(row)
        if args.json and rows:  # NOTE: written as it goes: a crash keeps what was measured
            _write_json(args.json, rows, skips)
        if args.progress:
            print(f"  [{i + 1}/{len(calls)}] {name} {time.time() - t_call:.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    rows.sort(key=lambda r: r["ratio"])
    return rows, skips


def _measure(call, name, specs, variant, dtype, backward, args, skips):
    mode = "fwd+bwd" if backward else "fwd"
    # NOTE: manygrad runs first: it checks its inputs, and a scaled case can be invalid
    # input that some PyTorch kernels do not check (out-of-range offsets write past arrays)
    try:
        case = Case(call, specs, variant, dtype)
        rm = _Runner(case, mg, backward)
        got = rm()
    except _SkipError:
        return None
    except Exception as e:  # noqa: BLE001
        skips.append((name, f"{variant} {mode}", "manygrad: " + repr(e)[:100]))
        return None
    try:
        rt = _Runner(case, torch, backward)
        note = "" if _close(got, rt()) else "DIFF"
    except Exception as e:  # noqa: BLE001 - PyTorch rejects it: not a case
        if variant == "contig":
            skips.append((name, f"{variant} {mode}", "torch: " + repr(e)[:100]))
        return None
    t_t, t_m = time_pair(rt, rm, args.repeats)
    shapes = [list(s) if isinstance(s, tuple) else list(getattr(s, "shape", ())) for s in specs
              if isinstance(s, (tuple, np.ndarray))]  # fmt: skip
    return {"op": name, "node": call["node"], "variant": variant, "mode": mode, "dtype":
            "int64" if variant == "i64" else dtype, "shapes": shapes, "torch_ms": t_t * 1e3,
            "manygrad_ms": t_m * 1e3, "ratio": t_t / t_m if t_m > 0 else float("inf"),
            "note": note}  # fmt: skip


def _write_json(path, rows, skips):
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"rows": sorted(rows, key=lambda r: r["ratio"]), "skips": skips}, f, indent=1)


def _fmt_shapes(shapes):
    return " ".join("x".join(map(str, s)) or "()" for s in shapes)[:40]


def _limit_memory(gb: float) -> None:
    """A scaled case that allocates too much fails with MemoryError (skipped), instead of
    the whole sweep being killed by the system."""
    try:
        import resource

        lim = int(gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_DATA, (lim, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    except (ImportError, ValueError, OSError):
        pass


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--only", default="", help="comma-separated: case label (op name) or test id contains one"
    )
    p.add_argument("--top", type=int, default=50, help="rows of the ranked table to print")
    p.add_argument("--json", default=None, help="write every row to this file")
    p.add_argument("--exclude", default="", help="comma-separated labels to leave out")
    p.add_argument("--size", type=int, default=1 << 18, help="elements in the largest input")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--no-backward", action="store_true")
    p.add_argument("--files", nargs="*", default=None)
    p.add_argument("--mem-gb", type=float, default=6.0, help="memory limit of the sweep")
    p.add_argument("--show-skips", action="store_true")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    mg.set_num_threads(1)
    _limit_memory(args.mem_gb)
    files = args.files or default_files()
    calls = record_calls(files)
    print(f"{len(calls)} op calls recorded from {len(files)} test files", flush=True)
    t0 = time.time()
    rows, skips = sweep(calls, args)
    print(f"{len(rows)} timings in {time.time() - t0:.0f} s; ratio = PyTorch / manygrad "
          "(CPU time, 1 thread; < 1: manygrad slower)\n")  # fmt: skip
    head = (
        f"{'ratio':>7} {'torch ms':>9} {'mg ms':>9}  {'op':<28} {'variant':<7} {'mode':<7} shapes"
    )
    print(head)
    print("-" * len(head))
    for r in rows[: args.top]:
        print(f"{r['ratio']:7.2f} {r['torch_ms']:9.3f} {r['manygrad_ms']:9.3f}  "
              f"{r['op'][:28]:<28} {r['variant']:<7} {r['mode']:<7} {_fmt_shapes(r['shapes'])}"
              f" {r['dtype'] if r['dtype'] != 'float32' else ''} {r['note']}")  # fmt: skip
    if args.show_skips:
        print(f"\n{len(skips)} skipped:")
        for s in skips:
            print("  ", *s)
    else:
        print(f"\n{len(skips)} cases skipped (--show-skips lists them)")
    if args.json:
        _write_json(args.json, rows, skips)


if __name__ == "__main__":
    main()
