"""User models named on the command line: ``path/to/file.py:ClassName`` or
``package.module:ClassName``, built with JSON arguments and recorded in the run's recipe
(import path, class, arguments and a SHA-256 of the source file) so that ``predict``,
``export``, ``serve`` and ``--resume`` rebuild the same model.

Example:
    >>> spec = user.spec("nets.py:Wide", {"width": 64})
    >>> model = user.build(spec)
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import warnings

from ..errors import CheckpointError, ManygradError


class UserModelError(ManygradError, ValueError):
    """A user model that can't be found, imported or built."""


def is_user_model(name: str | None) -> bool:
    """True for ``file.py:Class`` and ``package.module:Class`` (anything with a colon)."""
    return bool(name) and ":" in name


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _split(target: str) -> tuple[str, str]:
    where, _, cls = target.rpartition(":")
    if not where or not cls.isidentifier():
        raise UserModelError(
            f"--model {target!r}: expected path/to/file.py:ClassName or package.module:ClassName"
        )
    return where, cls


def _load_module(path: str | None, module: str | None, cls: str):
    if path is not None:
        if not os.path.isfile(path):
            raise UserModelError(
                f"model code {path} (class {cls}) is missing: the file does not exist; put "
                "it back (or pass --model with its new place)"
            )
        # NOTE: one module per file and content, so that edited code is imported anew
        key = hashlib.sha256(path.encode()).hexdigest()[:12] + "_" + _sha256(path)[:12]
        name = "manygrad_user_" + key
        if name in sys.modules:
            return sys.modules[name]
        d = os.path.dirname(path)
        if d not in sys.path:  # NOTE: lets the file import its sibling modules
            sys.path.insert(0, d)
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as e:
            del sys.modules[name]
            raise UserModelError(f"model code {path} (class {cls}) failed to import: "
                                 f"{type(e).__name__}: {e}") from e  # fmt: skip
        return mod
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UserModelError(
            f"model module {module} (class {cls}) can't be imported: {e}; is its package on "
            "PYTHONPATH (or installed)?"
        ) from e


def _class(mod, cls: str, where: str):
    c = getattr(mod, cls, None)
    if c is None:
        found = sorted(
            k for k, v in vars(mod).items() if inspect.isclass(v) and hasattr(v, "forward")
        )
        raise UserModelError(f"model code {where} has no class {cls}"
                             + (f"; it defines {', '.join(found)}" if found else ""))  # fmt: skip
    return c


def spec(target: str, kwargs: dict | None = None) -> dict:
    """The recipe entry for ``target`` (``file.py:Class`` or ``pkg.mod:Class``) and its
    constructor arguments, with the source file's hash."""
    where, cls = _split(target)
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = os.path.abspath(where)
        _load_module(path, None, cls)
        module = None
    else:
        module, path = where, None
        mod = _load_module(None, module, cls)
        path = os.path.abspath(mod.__file__) if getattr(mod, "__file__", None) else None
    return {
        "name": target,
        "kwargs": dict(kwargs or {}),
        "import": {
            "file": path,
            "module": module,
            "class": cls,
            "sha256": _sha256(path) if path else None,
        },
    }


def signature_names(s: dict) -> set[str]:
    """Names of the constructor's parameters (to fill data-dependent ones such as
    ``num_classes`` when the user did not pass them)."""
    imp = s["import"]
    c = _class(_load_module(None if imp["module"] else imp["file"], imp["module"], imp["class"]),
               imp["class"], imp["module"] or imp["file"])  # fmt: skip
    try:
        return set(inspect.signature(c).parameters)
    except (TypeError, ValueError):
        return set()


def build(s: dict):
    """The model of a recipe entry made by :func:`spec`; warns when its file changed."""
    from . import _jsonable

    imp = s.get("import") or {}
    cls, module, path = imp.get("class"), imp.get("module"), imp.get("file")
    where = module or path
    mod = _load_module(None if module else path, module, cls)
    if path and imp.get("sha256"):
        if os.path.isfile(path) and _sha256(path) != imp["sha256"]:
            warnings.warn(
                f"model code {path} (class {cls}) changed since the run was trained (its "
                "SHA-256 differs from the recipe's); the model is built from the code as it "
                "is now",
                UserWarning,
                stacklevel=3,
            )
    c = _class(mod, cls, where)
    kwargs = s.get("kwargs") or {}
    try:
        model = c(**kwargs)
    except TypeError as e:
        raise UserModelError(f"model class {cls} from {where}: bad arguments {kwargs}: {e}") from e
    object.__setattr__(model, "recipe", {**s, "kwargs": _jsonable(kwargs)})
    return model


def load_error(run_dir: str, s: dict, err: Exception) -> CheckpointError:
    """The error for weights that don't fit a user model: most likely its code changed."""
    imp = s.get("import") or {}
    return CheckpointError(
        f"{run_dir}: the saved weights don't fit class {imp.get('class')} from "
        f"{imp.get('module') or imp.get('file')} as its code is now ({err}); restore the code "
        "the run was trained with"
    )


__all__ = ["UserModelError", "build", "is_user_model", "spec"]
