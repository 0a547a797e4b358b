"""Run an unchanged PyTorch script on manygrad: ``manygrad run script.py args...``.

The script runs as ``__main__`` with ``sys.argv = [script, *args]`` and its folder first on
``sys.path``, exactly as ``python script.py args...`` would run it, except that the
``torch`` import hook (``compat.importer``) is installed first.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import sys
import tempfile
import traceback

from .importer import UnsupportedAPIError, UnsupportedModuleError, install, uninstall


def run_script(path: str, args: list[str] | tuple = ()) -> dict:
    """Run the PyTorch script at ``path`` with manygrad standing in for ``torch``.

    Args:
        path: the script file.
        args: its command-line arguments (``sys.argv[1:]`` as the script sees it).

    Returns:
        The script's globals when it finished.

    Example:
        >>> run_script("mnist.py", ["--epochs", "1"])
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"manygrad run: no such script: {path}")
    old_argv, old_path = sys.argv[:], sys.path[:]
    sys.argv = [path, *args]
    with _child_shim() as shim:
        # NOTE: the shim goes last: in this process the hook answers first anyway, and
        # worker processes (spawn/forkserver) inherit sys.path and find it there
        sys.path[:] = [os.path.dirname(os.path.abspath(path)), *sys.path, shim]
        install()
        try:
            return runpy.run_path(path, run_name="__main__")
        finally:
            uninstall()
            sys.argv[:] = old_argv
            sys.path[:] = old_path


_SHIM = """# Written by manygrad run: a worker process started by the script imports torch
# here first; this installs the hook and hands back manygrad's torch.
import importlib
import sys

del sys.modules[__name__]
from manygrad.compat.importer import install

install()
sys.modules[__name__] = importlib.import_module(__name__)
"""


@contextlib.contextmanager
def _child_shim():
    """A folder holding a ``torch`` package that installs the hook when imported, for
    DataLoader worker processes, which start a fresh interpreter and re-import the script."""
    with tempfile.TemporaryDirectory(prefix="manygrad-run-") as d:
        os.mkdir(os.path.join(d, "torch"))
        with open(os.path.join(d, "torch", "__init__.py"), "w") as f:
            f.write(_SHIM)
        yield d


def _script_line(tb, path: str) -> str:
    """``file:line: code`` of the deepest frame in the user's code (the script or a module
    of theirs, not manygrad's or Python's), for error messages."""
    where = ""
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for fs in traceback.extract_tb(tb):
        name = os.path.abspath(fs.filename)
        if fs.filename.startswith("<") or name.startswith(pkg + os.sep):
            continue
        if os.path.basename(os.path.dirname(name)) in ("importlib", "runpy") or name.endswith(
            os.sep + "runpy.py"
        ):
            continue
        where = f"{fs.filename}:{fs.lineno}: {fs.line}"
    return where or os.path.abspath(path)


def main(argv: list[str]) -> int:
    """Command-line entry: ``argv = [script, *args]``; returns the exit status."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: manygrad run SCRIPT [ARGS...]\n\nRun an unchanged PyTorch script with "
              "`torch` resolving to manygrad.")  # fmt: skip
        return 0 if argv else 2
    path, args = argv[0], argv[1:]
    try:
        run_script(path, args)
    except FileNotFoundError as e:
        if not os.path.isfile(path):
            print(f"error: {e}", file=sys.stderr)
            return 2
        traceback.print_exception(type(e), e, _from_script(e.__traceback__))
        return 1
    except (UnsupportedAPIError, UnsupportedModuleError) as e:
        where = _script_line(e.__traceback__, path)
        print(f"error: {e}" + (f"\n  at {where}" if where else ""), file=sys.stderr)
        return 3
    except SystemExit as e:
        code = e.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BaseException as e:
        # the user's own program failed: its traceback as `python script.py` shows it
        traceback.print_exception(type(e), e, _from_script(e.__traceback__))
        return 1
    return 0


def _from_script(tb):
    """``tb`` without its leading frames in this runner and runpy (the script's first)."""
    start = tb
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name != __file__ and "runpy" not in os.path.basename(name):
            return tb
        tb = tb.tb_next
    return start
