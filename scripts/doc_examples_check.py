"""Run the ``>>>`` examples of PyTorch's own docstrings on PyTorch and on manygrad, and compare.

Usage: ``python scripts/doc_examples_check.py [--jobs N] [--timeout 20] [--only REGEX] [--extra]``
(PyTorch must be installed: it is the oracle). Writes ``/tmp/doc_examples_report.md`` and
``/tmp/doc_examples_report.json`` and prints a summary.

What is checked: the docstrings of the public names of ``torch``, ``torch.nn.functional``,
``torch.linalg``, ``torch.special``, ``torch.fft``, of ``torch.Tensor``'s methods and of the
``torch.nn`` module classes (and their own methods), each kept only where manygrad has the
name too (``--extra`` adds ``torch.nn.init``, ``nn.utils``, ``autograd``, ``func``,
``distributions``, ``optim``, ``utils.data``, ``testing``, ...). A docstring's examples are
cut into *blocks* at the prose between them; the blocks of one docstring run in order in one
namespace (later blocks often use earlier ones' names).

How: two worker processes per job, one that imported PyTorch and one that ran
``manygrad.compat.install()`` (so ``import torch`` is manygrad). For each docstring a worker
forks a child that calls ``torch.manual_seed(0)``, runs the statements and streams one record
per statement back (the value's description where the statement is an expression, the
printed text, or the exception); the worker kills a child that runs past ``--timeout``.

Comparison, per statement, in this order of importance:

(a) manygrad raised (or timed out) where PyTorch did not;
(b) both ran but the values differ: a tensor's shape, dtype name or values (``rtol=1e-4``,
    ``atol=1e-5``, NaNs equal); tuples and lists item by item; numbers with the same
    tolerance; anything else by its repr text with ``manygrad.`` read as ``torch.`` and
    addresses blanked;
(c) PyTorch raised where manygrad ran (manygrad accepts what PyTorch rejects);
(d) the printed text, or a tensor's repr, differs where the values agree (reported only:
    mostly formatting, signs of zero and last-digit rounding).

A statement counts as random, and then only shapes and dtypes are compared, when it or an
earlier statement of the same docstring names a random or uninitialised creation (``rand``,
``randn``, ``randint``, ``normal``, ``bernoulli``, ``multinomial``, ``dropout``, ``empty``, ...)
or advanced PyTorch's default generator while running (a module's parameter initialisation).
A block is counted under its first difference; a NameError in manygrad after an earlier
manygrad failure of the same docstring is counted as a consequence, not a new failure.
Blocks that need files, the network, CUDA, distributed, jit/compile/export, sparse
compressed layouts, quantisation or named tensors are skipped (their reason is counted).
"""

from __future__ import annotations

import argparse
import ast
import collections
import contextlib
import doctest
import inspect
import io
import json
import math
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPORT_MD = "/tmp/doc_examples_report.md"
REPORT_JSON = "/tmp/doc_examples_report.json"
RTOL, ATOL = 1e-4, 1e-5
MAX_VALUES = 20000  # a tensor with more elements is compared by a few statistics only

RANDOM_RE = re.compile(
    r"\b(rand|randn|randint|randperm|rand_like|randn_like|randint_like|normal_?|bernoulli_?"
    r"|multinomial|poisson|uniform_|random_|exponential_|geometric_|cauchy_|log_normal_"
    r"|dropout\w*|\w*Dropout\w*|\w*empty\w*|seed|initial_seed"
    r"|get_rng_state|rrelu_?|RReLU|gumbel_softmax|FractionalMaxPool\dd|fractional_max_pool\dd"
    r"|kaiming_\w+|xavier_\w+|trunc_normal_|orthogonal_|skip_init)\b"
)
SKIP_RULES = [
    (
        "CUDA/accelerator",
        r"\bcuda\b|cudnn|TORCH_DOCTEST_CUDA|\bmps\b|\bxpu\b|pin_memory|\bStream\b",
    ),
    (
        "distributed",
        r"torch\.distributed|\bdist\.|init_process_group|DistributedDataParallel|\brpc\b",
    ),
    (
        "jit/compile/export",
        r"torch\.jit|\bjit\.|torch\.compile|torch\.export|torch\._dynamo|torch\.fx\b|\bScriptModule",
    ),
    (
        "sparse compressed layouts",
        r"sparse_(csr|csc|bsr|bsc)|crow_indices|ccol_indices|row_indices|col_indices",
    ),
    ("quantization", r"quantiz|qint8|quint8|qint32|quint4|q_scale|q_zero_point|int_repr|qconfig"),
    ("named tensors", r"\bnames=|refine_names|\.rename\(|align_to|align_as|\.names\b"),
    (
        "files",
        r"\bopen\(|tempfile|os\.path|from_file|mmap|['\"][\w./-]+\.(pt|pth|pkl|bin|txt|csv|npy|json"
        r"|zip|tar|onnx)['\"]",
    ),
    ("network", r"https?://|download|torch\.hub|urlopen|from_url"),
    (
        "meta/fake devices, other backends",
        r"TORCH_DOCTEST_(?!CUDA)\w+|torch\.backends\.(mkldnn|opt)",
    ),
]
SKIP_RES = [(why, re.compile(rx)) for why, rx in SKIP_RULES]
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]+")
# ops whose output shape depends on the input's values: with random inputs (which differ
# between PyTorch and manygrad) their shapes are not compared
DATA_SHAPE_RE = re.compile(
    r"masked_select|nonzero|bincount|unique|argwhere|histc|histogram|\[\s*\w*mask|repeat_interleave"
)


# --------------------------------------------------------------------------- collection


EXTRA_MODULES = [
    "torch.nn.init",
    "torch.nn.utils",
    "torch.nn.utils.rnn",
    "torch.nn.utils.parametrize",
    "torch.nn.utils.parametrizations",
    "torch.autograd",
    "torch.autograd.functional",
    "torch.func",
    "torch.distributions",
    "torch.optim",
    "torch.optim.lr_scheduler",
    "torch.utils.data",
    "torch.testing",
    "torch.signal.windows",
    "torch.random",
    "torch.amp",
    "torch.utils.checkpoint",
]


def _extra_pairs():
    """(torch name, torch module, manygrad module) for ``--extra``, where both import."""
    import importlib

    from manygrad.compat.importer import target_name

    pairs = []
    for name in EXTRA_MODULES:
        try:
            pairs.append(
                (name, importlib.import_module(name), importlib.import_module(target_name(name)))
            )
        except Exception:
            continue
    return pairs


def _doc_units(extra: bool = False):
    """[(qualname, docstring)] for the names both PyTorch and manygrad have."""
    import torch
    import torch.nn.functional as F

    import manygrad
    import manygrad.compat  # noqa: F401  (the compat methods are on manygrad.Tensor)
    import manygrad.nn.functional as MF

    pairs = [
        ("torch", torch, manygrad),
        ("torch.nn.functional", F, MF),
        ("torch.linalg", torch.linalg, manygrad.linalg),
        ("torch.special", torch.special, manygrad.special),
        ("torch.fft", torch.fft, manygrad.fft),
    ]
    if extra:
        pairs += _extra_pairs()
    units: list[tuple[str, str]] = []

    def add(qual, obj):
        doc = getattr(obj, "__doc__", None)
        if isinstance(doc, str) and ">>>" in doc:
            units.append((qual, doc))

    def add_methods(qual, tcls, mcls, only_own=True):
        for name in sorted(vars(tcls) if only_own else dir(tcls)):
            if name.startswith("_") or not hasattr(mcls, name):
                continue
            try:
                obj = getattr(tcls, name)
            except Exception:
                continue
            add(f"{qual}.{name}", obj)

    for modname, tmod, mmod in pairs:
        for name in sorted(dir(tmod)):
            if name.startswith("_") or not hasattr(mmod, name):
                continue
            try:
                obj = getattr(tmod, name)
            except Exception:
                continue
            if inspect.ismodule(obj) or not callable(obj):
                continue
            add(f"{modname}.{name}", obj)
            if (
                inspect.isclass(obj)
                and (modname == "torch" or modname in EXTRA_MODULES)
                and name != "Tensor"
            ):
                add_methods(f"{modname}.{name}", obj, getattr(mmod, name))
    add_methods("torch.Tensor", torch.Tensor, manygrad.Tensor, only_own=False)
    for name in sorted(dir(torch.nn)):
        obj = getattr(torch.nn, name)
        if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) and hasattr(manygrad.nn, name):
            add(f"torch.nn.{name}", obj)
            add_methods(f"torch.nn.{name}", obj, getattr(manygrad.nn, name))
    seen, out = set(), []
    for qual, doc in units:
        if doc not in seen:
            seen.add(doc)
            out.append((qual, doc))
    return out


_DIRECTIVE_RE = re.compile(r"^\s*#\s*x?doctest:\s*(.*)$")


def _blocks(doc: str, qual: str):
    """The example blocks of one docstring: [{"examples": [[source, want], ...], "skip": why}]."""
    parser = doctest.DocTestParser()
    try:
        parts = parser.parse(inspect.cleandoc(doc), qual)
    except ValueError:
        return []
    blocks, cur = [], []
    for part in parts:
        if isinstance(part, doctest.Example):
            cur.append(part)
        elif part.strip() and cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    out = []
    for exs in blocks:
        stmts, requires = [], []
        for ex in exs:
            src = ex.source
            m = _DIRECTIVE_RE.match(src.strip()) if src.count("\n") <= 1 else None
            if m:  # an xdoctest directive line such as `# xdoctest: +REQUIRES(env:...)`
                requires += re.findall(r"REQUIRES\(([^)]*)\)", m.group(1))
                continue
            stmts.append([src, ex.want])
        if not stmts:
            continue
        text = "".join(s for s, _ in stmts)
        why = None
        for req in requires:
            if "module:" not in req:
                why = f"requires {req}"
        for reason, rx in SKIP_RES:
            if why is None and rx.search(text):
                why = reason
        out.append({"examples": stmts, "skip": why})
    return out


def collect(only: str | None, extra: bool = False):
    units = []
    for qual, doc in _doc_units(extra):
        if only and not re.search(only, qual):
            continue
        blocks = _blocks(doc, qual)
        if blocks:
            units.append({"id": len(units), "name": qual, "blocks": blocks})
    return units


# --------------------------------------------------------------------------- the worker


def _to_numpy(t, torch, backend):
    import numpy as np

    t = t.detach()
    if backend == "torch":
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.device.type == "meta":
            return None
        if t.is_conj():
            t = t.resolve_conj()
        if t.is_neg():
            t = t.resolve_neg()
        t = t.cpu()
    try:
        a = np.asarray(t.numpy())
    except Exception:
        cplx = getattr(t, "is_complex", lambda: False)()
        a = np.asarray((t.to(torch.complex128) if cplx else t.to(torch.float64)).numpy())
    if a.dtype.kind in "biuc":
        return a.astype({"b": bool, "i": np.int64, "u": np.int64, "c": np.complex128}[a.dtype.kind])
    return a.astype(np.float64)


def _describe(v, torch, backend, depth=0):
    """A JSON-able description of a statement's value."""
    import numpy as np

    try:
        text = repr(v)
    except Exception as e:
        text = f"<repr failed: {type(e).__name__}: {e}>"
    text = text[:1500]
    if depth > 5 or getattr(v, "is_sparse", False):  # sparse tensors: compared as printed
        return {"k": "text", "v": text}
    if isinstance(v, torch.Tensor):
        d = {
            "k": "tensor",
            "shape": list(v.shape),
            "dtype": str(v.dtype).split(".")[-1],
            "repr": text,
            "rg": bool(getattr(v, "requires_grad", False)),
        }
        try:
            a = _to_numpy(v, torch, backend)
        except Exception as e:
            d["err"] = f"{type(e).__name__}: {e}"[:300]
            return d
        if a is None:
            return d
        d["kind"] = a.dtype.kind
        flat = a.ravel()
        if flat.size > MAX_VALUES:
            flat = np.array([flat.sum(), np.abs(flat).sum(), flat[0], flat[-1]])
            d["stats"] = True
        if flat.dtype.kind == "c":
            d["v"] = [flat.real.tolist(), flat.imag.tolist()]
        else:
            d["v"] = flat.tolist()
        return d
    if isinstance(v, (bool, np.bool_)):
        return {"k": "num", "t": "bool", "v": bool(v), "repr": text}
    if isinstance(v, (int, np.integer)):
        return {"k": "num", "t": "int", "v": int(v), "repr": text}
    if isinstance(v, (float, np.floating)):
        return {"k": "num", "t": "float", "v": float(v), "repr": text}
    if isinstance(v, (complex, np.complexfloating)):
        return {"k": "num", "t": "complex", "v": [v.real, v.imag], "repr": text}
    if v is None:
        return {"k": "none", "repr": "None"}
    if isinstance(v, str):
        return {"k": "text", "v": text, "repr": text}
    if isinstance(v, (tuple, list)) and len(v) <= 500:
        items = [_describe(x, torch, backend, depth + 1) for x in v]
        kind = "list" if isinstance(v, list) else "tuple"
        return {"k": "seq", "seq": kind, "items": items, "repr": text}
    if isinstance(v, dict) and len(v) <= 500:
        keys = [repr(k) for k in v]
        vals = [_describe(x, torch, backend, depth + 1) for x in v.values()]
        return {"k": "dict", "keys": keys, "items": vals, "repr": text}
    return {"k": "text", "v": text, "repr": text}


def _run_source(src, ns):
    """Run one doctest statement; (is_expression, value)."""
    tree = ast.parse(src, "<doc>", "exec")
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        head = ast.Module(body=tree.body[:-1], type_ignores=[])
        exec(compile(head, "<doc>", "exec"), ns)
        expr = ast.Expression(body=tree.body[-1].value)
        return True, eval(compile(expr, "<doc>", "eval"), ns)
    exec(compile(tree, "<doc>", "exec"), ns)
    return False, None


def _where(tb) -> str:
    """The innermost frame in manygrad's (or torch's) source, for triage."""
    frames = traceback.extract_tb(tb)
    for fr in reversed(frames):
        f = fr.filename.replace("\\", "/")
        if "/manygrad/" in f or "/torch/" in f:
            f = f.split("/src/", 1)[-1] if "/src/" in f else f.split("site-packages/", 1)[-1]
            return f"{f}:{fr.lineno} in {fr.name}"
    return ""


def _child(unit, backend, torch, wfd, workdir):
    """Run one docstring's blocks in this (forked) process, one JSON line per statement."""
    import warnings

    import numpy as np

    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    out = os.fdopen(wfd, "w", buffering=1)
    warnings.simplefilter("ignore")
    os.chdir(workdir)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    torch.manual_seed(0)
    import torch.nn
    import torch.nn.functional

    ns = {
        "__name__": "__doctest__",
        "torch": torch,
        "nn": torch.nn,
        "F": torch.nn.functional,
        "np": np,
        "numpy": np,
        "math": math,
    }
    for b, block in enumerate(unit["blocks"]):
        if block["skip"]:
            continue
        for i, (src, _want) in enumerate(block["examples"]):
            rec = {"b": b, "i": i}
            state = torch.random.get_rng_state().numpy().tobytes() if backend == "torch" else None
            buf = io.StringIO()
            t0 = time.time()
            try:
                with contextlib.redirect_stdout(buf):
                    is_expr, value = _run_source(src, ns)
                rec["ok"] = True
                rec["expr"] = is_expr
                if is_expr:
                    rec["val"] = _describe(value, torch, backend)
            except BaseException as e:  # noqa: BLE001 (SystemExit too: it is the example's)
                rec["ok"] = False
                msg = str(e)
                rec["exc"] = {
                    "type": type(e).__name__,
                    "msg": msg[:800],
                    "where": _where(e.__traceback__),
                }
            rec["secs"] = round(time.time() - t0, 3)
            rec["out"] = buf.getvalue()[:3000]
            if state is not None:
                rec["rng"] = torch.random.get_rng_state().numpy().tobytes() != state
            try:
                line = json.dumps(rec)
            except (TypeError, ValueError) as e:
                rec.pop("val", None)
                rec["val"] = {"k": "text", "v": f"<unserialisable: {e}>"}
                line = json.dumps(rec)
            out.write(line + "\n")
    out.flush()


def worker(backend: str, timeout: float) -> None:
    """Serve docstrings from stdin (one JSON line each), answer one JSON line each on stdout."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if backend == "manygrad":
        import manygrad.compat

        manygrad.compat.install()
    import torch
    import torch.nn
    import torch.nn.functional  # noqa: F401

    stdout = sys.stdout
    for line in sys.stdin:
        unit = json.loads(line)
        workdir = tempfile.mkdtemp(prefix="docex-")  # the examples' files land here
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(r)
            try:
                _child(unit, backend, torch, w, workdir)
            finally:
                os._exit(0)
        os.close(w)
        data, deadline, timed_out = b"", time.time() + timeout, False
        while True:
            left = deadline - time.time()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                continue
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            data += chunk
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        shutil.rmtree(workdir, ignore_errors=True)
        recs = []
        for ln in data.decode("utf-8", "replace").splitlines():
            try:
                recs.append(json.loads(ln))
            except ValueError:
                pass
        crash = None
        if timed_out:
            crash = f"Timeout (> {timeout:g} s)"
        elif os.WIFSIGNALED(status):
            crash = f"killed by signal {os.WTERMSIG(status)}"
        stdout.write(json.dumps({"id": unit["id"], "recs": recs, "crash": crash}) + "\n")
        stdout.flush()


# --------------------------------------------------------------------------- running


class _Worker:
    def __init__(self, backend, timeout):
        self.backend, self.timeout = backend, timeout
        self.proc = None

    def _start(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--worker",
                self.backend,
                "--timeout",
                str(self.timeout),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def run(self, unit):
        for _attempt in range(2):
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                self.proc.stdin.write(json.dumps(unit) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if line:
                return json.loads(line)
            self.close()
        return {"id": unit["id"], "recs": [], "crash": "worker died"}

    def close(self):
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def run_all(units, jobs, timeout):
    todo = queue.Queue()
    for u in units:
        todo.put(u)
    results = {}
    lock = threading.Lock()
    total = len(units)

    def loop():
        tw, mw = _Worker("torch", timeout), _Worker("manygrad", timeout)
        try:
            while True:
                try:
                    u = todo.get_nowait()
                except queue.Empty:
                    return
                rt, rm = tw.run(u), mw.run(u)
                with lock:
                    results[u["id"]] = (rt, rm)
                    n = len(results)
                if n % 50 == 0 or n == total:
                    print(f"  {n}/{total} docstrings", file=sys.stderr, flush=True)
        finally:
            tw.close()
            mw.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# --------------------------------------------------------------------------- comparison


def _norm_text(s: str) -> str:
    s = s.replace("manygrad.", "torch.").replace("manygrad", "torch")
    s = ADDRESS_RE.sub("0x?", s)
    return " ".join(s.split())


def _close(a, b) -> bool:
    if a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        if math.isinf(a) or math.isinf(b):
            return False
    try:
        return abs(a - b) <= ATOL + RTOL * abs(a)
    except TypeError:
        return False


def _cmp_values(t, m) -> str | None:
    import numpy as np

    if t.get("stats") != m.get("stats"):
        return "value summary differs"
    if t.get("kind") in ("c",) or m.get("kind") in ("c",):
        ta = (
            np.array(t["v"][0]) + 1j * np.array(t["v"][1])
            if t.get("kind") == "c"
            else np.array(t["v"])
        )
        ma = (
            np.array(m["v"][0]) + 1j * np.array(m["v"][1])
            if m.get("kind") == "c"
            else np.array(m["v"])
        )
    else:
        ta, ma = np.array(t["v"], dtype=float), np.array(m["v"], dtype=float)
    if ta.shape != ma.shape:
        return "values differ"
    if t.get("kind") in "biu" and m.get("kind") in "biu":
        ok = np.array_equal(ta, ma)
    else:
        ok = np.allclose(ma, ta, rtol=RTOL, atol=ATOL, equal_nan=True)
    if not ok:
        return "values differ"
    return None


def compare(t, m, random: bool, path="", data_shape=False) -> str | None:
    """Why the description ``m`` (manygrad) differs from ``t`` (PyTorch), or None.

    ``random``: compare shapes and dtypes only; ``data_shape``: not even the shapes where
    their number of dimensions agrees (the statement's shape depends on random values).
    """
    if t["k"] != m["k"]:
        return f"{path}kind: torch {t['k']}, manygrad {m['k']}"
    k = t["k"]
    if k == "tensor":
        same_ndim = len(t["shape"]) == len(m["shape"])
        if t["shape"] != m["shape"] and not (random and data_shape and same_ndim):
            return f"{path}shape: torch {t['shape']}, manygrad {m['shape']}"
        if t["dtype"] != m["dtype"]:
            return f"{path}dtype: torch {t['dtype']}, manygrad {m['dtype']}"
        if t.get("rg") != m.get("rg"):
            return f"{path}requires_grad: torch {t.get('rg')}, manygrad {m.get('rg')}"
        if random or "v" not in t:
            return None
        if "v" not in m:
            return f"{path}manygrad's tensor could not be read: {m.get('err')}"
        why = _cmp_values(t, m)
        return f"{path}{why}" if why else None
    if k == "num":
        if t["t"] != m["t"]:
            return f"{path}type: torch {t['t']}, manygrad {m['t']}"
        if random:
            return None
        tv, mv = t["v"], m["v"]
        if t["t"] == "complex":
            ok = _close(tv[0], mv[0]) and _close(tv[1], mv[1])
        else:
            ok = _close(tv, mv)
        return None if ok else f"{path}value: torch {t['repr']}, manygrad {m['repr']}"
    if k in ("seq", "dict"):
        if t.get("seq") != m.get("seq"):
            return f"{path}type: torch {t.get('seq')}, manygrad {m.get('seq')}"
        if len(t["items"]) != len(m["items"]):
            return f"{path}length: torch {len(t['items'])}, manygrad {len(m['items'])}"
        if k == "dict" and [_norm_text(x) for x in t["keys"]] != [_norm_text(x) for x in m["keys"]]:
            return f"{path}keys differ"
        for j, (a, b) in enumerate(zip(t["items"], m["items"])):
            why = compare(a, b, random, f"{path}[{j}] ", data_shape)
            if why:
                return why
        return None
    if k == "none":
        return None
    if random and ("tensor(" in t["v"] or re.search(r"\d\.\d", t["v"])):
        return None
    if t["v"].startswith("<") and t["v"].endswith(">"):  # <function ...>, <... object at 0x...>
        return None
    if _norm_text(t["v"]) != _norm_text(m["v"]):
        return f"{path}repr text differs"
    return None


def analyse(units, results):
    """Per block: its status and the differences found. Returns (blocks, findings)."""
    blocks, findings = [], []
    for u in units:
        rt, rm = results[u["id"]]
        tr = {(r["b"], r["i"]): r for r in rt["recs"]}
        mr = {(r["b"], r["i"]): r for r in rm["recs"]}
        tainted = False  # an earlier statement of this docstring drew random numbers
        mg_failed = False  # manygrad failed (alone) earlier in this docstring
        for b, block in enumerate(u["blocks"]):
            entry = {"unit": u["name"], "b": b, "status": None, "skip": block["skip"]}
            blocks.append(entry)
            if block["skip"]:
                entry["status"] = "skipped"
                continue
            before = [blk["examples"] for blk in u["blocks"][:b] if not blk["skip"]]
            diffs = []
            torch_err = False
            for i, (src, want) in enumerate(block["examples"]):
                t, m = tr.get((b, i)), mr.get((b, i))
                if RANDOM_RE.search(src) or (t is not None and t.get("rng")):
                    tainted = True
                base = {
                    "unit": u["name"],
                    "b": b,
                    "i": i,
                    "src": src,
                    "block": block["examples"],
                    "before": before,
                }
                if t is None:  # torch timed out or crashed here: nothing to compare
                    break
                if m is None:
                    why = rm.get("crash") or "no result"
                    diffs.append(dict(base, cat="a", exc={"type": why, "msg": "", "where": ""}))
                    mg_failed = True
                    break
                if t["ok"] and not m["ok"]:
                    consequence = mg_failed and m["exc"]["type"] in (
                        "NameError",
                        "UnboundLocalError",
                    )
                    diffs.append(
                        dict(base, cat="a-consequence" if consequence else "a", exc=m["exc"])
                    )
                    mg_failed = True
                    continue
                if not t["ok"]:
                    if not want.lstrip().startswith("Traceback"):
                        torch_err = True
                    if m["ok"] and not mg_failed:
                        diffs.append(dict(base, cat="c", torch_exc=t["exc"], mg=m.get("val")))
                    continue
                if t.get("expr") and m.get("expr"):
                    why = compare(
                        t["val"], m["val"], tainted, data_shape=bool(DATA_SHAPE_RE.search(src))
                    )
                    if why:
                        diffs.append(
                            dict(
                                base, cat="b", why=why, random=tainted, torch=t["val"], mg=m["val"]
                            )
                        )
                        continue
                    tv, mv = t["val"], m["val"]
                    if (
                        not tainted
                        and tv["k"] == "tensor"
                        and _norm_text(tv["repr"]) != _norm_text(mv["repr"])
                    ):
                        diffs.append(dict(base, cat="d", torch_out=tv["repr"], mg_out=mv["repr"]))
                        continue
                if not tainted and _norm_text(t.get("out", "")) != _norm_text(m.get("out", "")):
                    diffs.append(dict(base, cat="d", torch_out=t["out"], mg_out=m["out"]))
            main = [d for d in diffs if d["cat"] in ("a", "b")]
            first = main[0]["cat"] if main else (diffs[0]["cat"] if diffs else None)
            entry["status"] = {None: "pass", "a": "a", "b": "b", "c": "c", "d": "d"}.get(
                first, "consequence"
            )
            entry["torch_err"] = torch_err
            entry["ran_in_torch"] = any(
                tr.get((b, i), {}).get("ok") for i in range(len(block["examples"]))
            )
            entry["diffs"] = len(diffs)
            # the block is filed under its first (a)/(b) difference; the rest are listed too
            for d in diffs:
                d["first_in_block"] = d is (main[0] if main else diffs[0])
            findings += diffs
    return blocks, findings


# --------------------------------------------------------------------------- report


def _short(s: str, n=400) -> str:
    s = s if isinstance(s, str) else json.dumps(s)
    return s if len(s) <= n else s[: n - 3] + "..."


def _exc_key(exc) -> str:
    msg = exc["msg"].strip().splitlines()[0] if exc["msg"].strip() else ""
    msg = re.sub(r"\d+", "N", msg)[:120]
    return f"{exc['type']}: {msg}"


def _block_src(block, before=()) -> str:
    """The block's source in doctest form, after the earlier blocks of its docstring."""
    text = ""
    for k, blk in enumerate([*before, block]):
        if before:
            text += "# --- this block\n" if k == len(before) else f"# --- earlier block {k}\n"
        text += "".join(">>> " + s.rstrip("\n").replace("\n", "\n... ") + "\n" for s, _ in blk)
    return text


def write_report(units, blocks, findings, elapsed, path_md, path_json):
    counts = collections.Counter(b["status"] for b in blocks)
    skipped = collections.Counter(b["skip"] for b in blocks if b["skip"])
    ran = [b for b in blocks if b["status"] != "skipped"]
    torch_ok = [b for b in ran if b.get("ran_in_torch")]
    firsts = [f for f in findings if f["first_in_block"]]
    a = [f for f in findings if f["cat"] == "a"]
    bb = [f for f in findings if f["cat"] == "b"]
    c = [f for f in findings if f["cat"] == "c"]
    d = [f for f in findings if f["cat"] == "d"]
    summary = {
        "docstrings": len(units),
        "blocks": len(blocks),
        "blocks_skipped": len(blocks) - len(ran),
        "skip_reasons": dict(skipped),
        "blocks_ran": len(ran),
        "blocks_with_a_torch_statement_that_ran": len(torch_ok),
        "blocks_where_torch_itself_raised": len([b for b in ran if b.get("torch_err")]),
        "blocks_passed": counts["pass"],
        "blocks_failed_a_manygrad_raised": counts["a"],
        "blocks_failed_b_mismatch": counts["b"],
        "blocks_only_c_torch_raised": counts["c"],
        "blocks_only_d_printed_text": counts["d"],
        "blocks_only_consequences": counts["consequence"],
        "statements_a": len(a),
        "statements_a_consequence": len([f for f in findings if f["cat"] == "a-consequence"]),
        "statements_b": len(bb),
        "statements_c": len(c),
        "statements_d": len(d),
        "seconds": round(elapsed, 1),
    }
    with open(path_json, "w") as f:
        json.dump({"summary": summary, "blocks": blocks, "findings": findings}, f, indent=1)

    lines = ["# PyTorch docstring examples on manygrad", ""]
    lines.append("Generated by `scripts/doc_examples_check.py`.")
    lines.append("")
    lines.append("| | count |")
    lines.append("|---|---:|")
    for k, v in summary.items():
        if k != "skip_reasons":
            lines.append(f"| {k} | {v} |")
    lines.append("")
    lines.append("Skipped blocks: " + ", ".join(f"{k}: {v}" for k, v in skipped.most_common()))
    lines.append("")

    lines.append(f"## (a) manygrad raised where PyTorch ran ({len(a)} statements)")
    lines.append("")
    groups = collections.defaultdict(list)
    for f in a:
        groups[_exc_key(f["exc"])].append(f)
    for key, fs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"### {_short(key, 200)} ({len(fs)})")
        lines.append("")
        for f in fs:
            lines.append(
                f"- `{f['unit']}` block {f['b']} statement {f['i']}: `{_short(f['src'].strip(), 200)}`"
            )
            lines.append(
                f"  - {f['exc']['type']}: {_short(f['exc']['msg'], 300)}  ({f['exc']['where']})"
            )
        f0 = fs[0]
        lines.append("")
        lines.append("```python")
        lines.append(_short(_block_src(f0["block"], f0["before"]), 1500))
        lines.append("```")
        lines.append("")

    lines.append(f"## (b) value, shape or dtype mismatch ({len(bb)} statements)")
    lines.append("")
    for f in bb:
        rnd = " (random: shapes/dtypes only)" if f["random"] else ""
        lines.append(f"### `{f['unit']}` block {f['b']} statement {f['i']}{rnd}")
        lines.append("")
        lines.append(f"{f['why']}")
        lines.append("")
        lines.append("```python")
        lines.append(_short(_block_src(f["block"], f["before"]), 1200))
        lines.append(f"# statement: {f['src'].strip()}")
        lines.append(
            "# torch:    " + _short(f["torch"].get("repr", ""), 600).replace("\n", "\n#           ")
        )
        lines.append(
            "# manygrad: " + _short(f["mg"].get("repr", ""), 600).replace("\n", "\n#           ")
        )
        lines.append("```")
        lines.append("")

    lines.append(f"## (c) PyTorch raised where manygrad ran ({len(c)} statements)")
    lines.append("")
    for f in c:
        lines.append(
            f"- `{f['unit']}` block {f['b']}: `{_short(f['src'].strip(), 150)}`: torch "
            f"{f['torch_exc']['type']}: {_short(f['torch_exc']['msg'], 150)}"
        )
    lines.append("")
    lines.append(f"## (d) printed text differs ({len(d)} statements)")
    lines.append("")
    for f in d:
        lines.append(f"- `{f['unit']}` block {f['b']}: `{_short(f['src'].strip(), 150)}`")
        lines.append(f"  - torch:    `{_short(_norm_text(f['torch_out']), 200)}`")
        lines.append(f"  - manygrad: `{_short(_norm_text(f['mg_out']), 200)}`")
    lines.append("")
    with open(path_md, "w") as f:
        f.write("\n".join(lines))
    return summary, firsts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", choices=["torch", "manygrad"], help=argparse.SUPPRESS)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="docstrings run at once")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per docstring and backend")
    ap.add_argument(
        "--only", help="regex on the qualified name (torch.linalg.svd, torch.nn.Linear)"
    )
    ap.add_argument(
        "--extra",
        action="store_true",
        help="also torch.nn.init, nn.utils, autograd, func, distributions, optim, utils.data, ...",
    )
    ap.add_argument("--out", default=REPORT_MD)
    ap.add_argument("--json", default=REPORT_JSON)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.timeout)
        return 0
    t0 = time.time()
    units = collect(args.only, args.extra)
    nblocks = sum(len(u["blocks"]) for u in units)
    print(
        f"{len(units)} docstrings, {nblocks} example blocks; running on {args.jobs} jobs",
        file=sys.stderr,
    )
    results = run_all(units, args.jobs, args.timeout)
    blocks, findings = analyse(units, results)
    summary, _ = write_report(units, blocks, findings, time.time() - t0, args.out, args.json)
    width = max(len(k) for k in summary)
    for k, v in summary.items():
        print(f"{k:<{width}}  {v}")
    print(f"report: {args.out} (and {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
